"""Synthetic lake input for the lake benchmarks: a catalog in ``dims`` and a day of bronze.

Written with numpy, pyarrow and delta-rs straight into the registry's tables (no Spark, no
Kafka, no PostgreSQL), so ten million events take seconds to make, not the hour the stream
would need. The shapes are the ones that decide a job's cost:

* songs drawn from a Zipf law over the catalog (a few hits, a long tail), 0.5 % of plays
  of songs the catalog does not know (silver keeps and flags them);
* about ``events / 20`` listeners, each with a home country; a few devices;
* event types as a player sends them (mostly completes, a quarter skips; ms_played follows);
* 0.2 % of events delivered twice (the stream de-duplicates only within its TTL; silver
  de-duplicates over all history).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN", "SE", "JP")
COUNTRY_WEIGHTS = (0.30, 0.12, 0.12, 0.08, 0.14, 0.12, 0.04, 0.08)
DEVICES = ("mobile", "desktop", "web", "tablet", "smart_speaker")
DEVICE_WEIGHTS = (0.60, 0.18, 0.12, 0.06, 0.04)
EVENT_TYPES = ("complete", "skip", "play", "like")
EVENT_TYPE_WEIGHTS = (0.55, 0.25, 0.15, 0.05)
GENRES = (
    "pop", "rock", "hip-hop", "electronic", "jazz", "classical",
    "latin", "r&b", "country", "metal", "folk", "indie",
)  # fmt: skip
ZIPF_EXPONENT = 0.95
UNKNOWN_SONG_SHARE = 0.005
DUPLICATE_SHARE = 0.002
CHUNK_EVENTS = 1_000_000
"""Events generated and written per record batch: bounds the generator's memory at 10M."""


@dataclass(frozen=True)
class Shape:
    """How big the synthetic lake is."""

    events: int
    songs: int
    listeners: int

    @classmethod
    def for_events(cls, events: int, songs: int | None = None) -> Shape:
        """A realistic shape for ``events`` a day: ~events/20 listeners, ~events/100 songs."""
        return cls(
            events=events,
            songs=songs or max(500, events // 100),
            listeners=max(10, events // 20),
        )


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded ``numbers`` as a string array, without a Python loop."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def song_ids(numbers: np.ndarray) -> pa.Array:
    return _ids("song-", numbers, 8)


def user_ids(numbers: np.ndarray) -> pa.Array:
    return _ids("user-", numbers, 9)


def _timestamps(micros: np.ndarray) -> pa.Array:
    return pa.array(micros, pa.timestamp("us", tz="UTC"))


def song_durations_ms(songs: int, seed: int) -> np.ndarray:
    """Each catalog song's length, 2 to 6 minutes (fixed by the seed)."""
    return np.random.default_rng(seed).integers(120_000, 360_000, songs, dtype=np.int32)


def user_countries(listeners: int, seed: int) -> np.ndarray:
    """Each listener's home country, as an index into ``COUNTRIES``."""
    rng = np.random.default_rng(seed + 1)
    return rng.choice(len(COUNTRIES), listeners, p=COUNTRY_WEIGHTS)


def write_dims(settings, shape: Shape, seed: int) -> dict[str, int]:
    """Write ``dims.artists|albums|songs|users`` for ``shape`` (overwriting); rows per table."""
    from deltalake import write_deltalake

    from encore.tables import DIM_ALBUMS, DIM_ARTISTS, DIM_SONGS, DIM_USERS

    rng = np.random.default_rng(seed + 2)
    created = datetime(2025, 1, 1, tzinfo=UTC)
    songs = np.arange(shape.songs)
    albums = np.arange(-(-shape.songs // 10))  # ten songs an album
    artists = np.arange(max(1, len(albums) // 3))  # three albums an artist
    album_artist = albums % len(artists)
    artist_ids = _ids("artist-", artists, 7)
    album_ids = _ids("album-", albums, 8)
    columns = [
        (
            DIM_ARTISTS,
            {
                "artist_id": artist_ids,
                "name": pc.binary_join_element_wise("Artist ", artist_ids, ""),
                "popularity": rng.random(len(artists)),
                "created_at": [created] * len(artists),
                "updated_at": [created] * len(artists),
            },
        ),
        (
            DIM_ALBUMS,
            {
                "album_id": album_ids,
                "artist_id": pc.take(artist_ids, album_artist),
                "title": pc.binary_join_element_wise("Album ", album_ids, ""),
                "release_year": rng.integers(1960, 2026, len(albums), dtype=np.int32),
                "created_at": [created] * len(albums),
                "updated_at": [created] * len(albums),
            },
        ),
        (
            DIM_SONGS,
            {
                "song_id": song_ids(songs),
                "title": pc.binary_join_element_wise("Song ", song_ids(songs), ""),
                "artist_id": pc.take(artist_ids, album_artist[songs // 10]),
                "album_id": pc.take(album_ids, songs // 10),
                "track_number": (songs % 10 + 1).astype(np.int32),
                "genre": [GENRES[a % len(GENRES)] for a in album_artist[songs // 10]],
                "duration_ms": song_durations_ms(shape.songs, seed),
                "release_date": [date(2020, 1, 1)] * shape.songs,
                "explicit": rng.random(shape.songs) < 0.1,
                "territories": [list(COUNTRIES)] * shape.songs,  # licensed where listened
                "popularity": rng.random(shape.songs),
                "created_at": [created] * shape.songs,
                "updated_at": [created] * shape.songs,
            },
        ),
        (
            DIM_USERS,
            {
                "user_id": user_ids(np.arange(shape.listeners)),
                "country": pc.take(pa.array(COUNTRIES), user_countries(shape.listeners, seed)),
                "subscription_plan": rng.choice(
                    ["free", "premium", "family", "student"], shape.listeners
                ),
                "allow_explicit": np.ones(shape.listeners, dtype=bool),
                "created_at": [created] * shape.listeners,
            },
        ),
    ]
    counts = {}
    for table, data in columns:
        frame = pa.table(data).cast(table.arrow_schema())
        write_deltalake(table.path(settings), frame, mode="overwrite")
        counts[table.qualified_name] = frame.num_rows
    return counts


def _bronze_chunk(
    rng: np.random.Generator,
    shape: Shape,
    day: date,
    first_offset: int,
    size: int,
    cdf: np.ndarray,
    durations: np.ndarray,
    countries: np.ndarray,
) -> dict[str, np.ndarray | pa.Array]:
    """``size`` events of ``day`` as bronze columns (numpy, for duplicating)."""
    day_start = int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1_000_000)
    song = np.searchsorted(cdf, rng.random(size))
    unknown = rng.random(size) < UNKNOWN_SONG_SHARE
    song = np.where(unknown, shape.songs + rng.integers(0, 1000, size), song)
    duration = np.where(unknown, 200_000, durations[np.minimum(song, shape.songs - 1)])
    # squaring a uniform skews activity: a few heavy listeners, many light ones
    user = (shape.listeners * rng.random(size) ** 2).astype(np.int64)
    kind = rng.choice(len(EVENT_TYPES), size, p=EVENT_TYPE_WEIGHTS)
    played = np.select(
        [kind == 0, kind == 1, kind == 2],
        [duration, rng.integers(1_000, 30_000, size), (duration * rng.random(size))],
        default=duration,
    ).astype(np.int64)
    # the last hour stays empty so that every play ends on the same day
    start = day_start + rng.integers(0, 23 * 3_600_000_000, size)
    end = start + played * 1000
    return {
        "offset": first_offset + np.arange(size),
        "user": user,
        "song": song,
        "start": start,
        "end": end,
        "played": played,
        "kind": kind,
        "device": rng.choice(len(DEVICES), size, p=DEVICE_WEIGHTS),
        "country": countries[user],
        "ingested": end + rng.integers(200_000, 5_000_000, size),
    }


def _duplicated(rng: np.random.Generator, chunk: dict, next_offset: int) -> dict:
    """A few of ``chunk``'s events again, delivered later under new offsets."""
    picked = np.flatnonzero(rng.random(len(chunk["offset"])) < DUPLICATE_SHARE)
    again = {name: values[picked] for name, values in chunk.items()}
    again["ingested"] = again["ingested"] + 3_600_000_000  # redelivered an hour later
    again["event"] = again["offset"]  # same event id as the first delivery
    again["offset"] = next_offset + np.arange(len(picked))
    return again


def _record_batch(day: date, chunk: dict, schema: pa.Schema) -> pa.RecordBatch:
    size = len(chunk["offset"])
    return pa.RecordBatch.from_pydict(
        {
            "event_id": _ids("event-", chunk.get("event", chunk["offset"]), 10),
            "user_id": user_ids(chunk["user"]),
            "song_id": song_ids(chunk["song"]),
            "start_time": _timestamps(chunk["start"]),
            "end_time": _timestamps(chunk["end"]),
            "ms_played": chunk["played"],
            "event_type": pc.take(pa.array(EVENT_TYPES), chunk["kind"]),
            "device_type": pc.take(pa.array(DEVICES), chunk["device"]),
            "country_code": pc.take(pa.array(COUNTRIES), chunk["country"]),
            "schema_version": np.ones(size, dtype=np.int32),
            "event_date": pa.array([day] * size, pa.date32()),
            "kafka_partition": (chunk["offset"] % 6).astype(np.int32),
            "kafka_offset": chunk["offset"],
            "ingested_at": _timestamps(chunk["ingested"]),
            "variant": pa.nulls(size, pa.string()),  # no A/B test in these plays
        },
        schema=schema,
    )


def bronze_batches(
    shape: Shape, day: date, seed: int, counts: dict[str, int] | None = None
) -> Iterator[pa.RecordBatch]:
    """``shape.events`` bronze rows of ``day`` (redeliveries included), in record batches;
    ``counts`` receives ``rows`` and ``redelivered`` as they are made."""
    from encore.tables import PLAY_EVENTS

    schema = PLAY_EVENTS.arrow_schema()
    counts = counts if counts is not None else {}
    counts |= {"rows": 0, "redelivered": 0}
    rng = np.random.default_rng(seed + 3)
    weights = 1.0 / np.arange(1, shape.songs + 1) ** ZIPF_EXPONENT
    cdf = np.cumsum(weights) / weights.sum()
    durations = song_durations_ms(shape.songs, seed)
    countries = user_countries(shape.listeners, seed)
    while counts["rows"] < shape.events:
        size = min(CHUNK_EVENTS, shape.events - counts["rows"])
        # redeliveries count towards the events: bronze holds exactly shape.events rows
        fresh = max(1, round(size / (1 + DUPLICATE_SHARE)))
        chunk = _bronze_chunk(rng, shape, day, counts["rows"], fresh, cdf, durations, countries)
        again = _duplicated(rng, chunk, counts["rows"] + fresh)
        again = {k: v[: size - fresh] for k, v in again.items()}
        yield _record_batch(day, chunk, schema)
        if len(again["offset"]):
            yield _record_batch(day, again, schema)
        counts["rows"] += fresh + len(again["offset"])
        counts["redelivered"] += len(again["offset"])


def write_bronze_day(settings, shape: Shape, day: date, seed: int) -> dict[str, int]:
    """Write one day of bronze (``bronze.play_events``) in one commit; its ``rows`` and how
    many of them are ``redelivered`` copies of an earlier event."""
    from deltalake import write_deltalake

    from encore.tables import PLAY_EVENTS

    counts: dict[str, int] = {}
    batches = bronze_batches(shape, day, seed, counts)
    reader = pa.RecordBatchReader.from_batches(PLAY_EVENTS.arrow_schema(), batches)
    write_deltalake(PLAY_EVENTS.path(settings), reader, mode="append", partition_by=["event_date"])
    return counts


def yesterday() -> date:
    return (datetime.now(UTC) - timedelta(days=1)).date()
