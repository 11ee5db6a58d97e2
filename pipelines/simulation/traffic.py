"""Simulated listening: a deterministic stream of v1 play events, and ways to send it.

Inputs: a ``SimulationConfig`` (seed, simulated span, population) and optionally the HetRec
lastfm-2k play counts (``user_artists.dat``). Output: JSON-ready v1 records
(``PlayEventV1.to_record()`` form, times as ISO-8601 UTC), ordered by ``end_time``, then
optionally faults (re-sent duplicates, malformed records) and a target: Kafka's play-events
topic or the streaming API.

The model, each piece a plain, documented assumption rather than a fit to real data:

* **Catalogue**: artists with 3 to ``2 * songs_per_artist`` songs (``a<artist>-s<k>``).
  Artist popularity is Zipf (exponent ``zipf_exponent``), songs within an artist Zipf with
  exponent 1, so song plays have a Zipf-like head. Song lengths are log-normal around 3.5 min.
* **Listeners**: a country (skewed: US first), a primary device used in 80% of sessions, a
  handful of favourite artists (by popularity) with Dirichlet-like weights, an exploration
  rate (the rest of the plays follow global popularity), a skip propensity around 25%, a
  like rate of a few percent, and a session rate (log-normal, about two sessions a day).
* **Time**: sessions start as a Poisson process thinned by a time-of-day curve in the
  listener's local time (quiet at 4 am, peaks at the commute and in the evening). A session
  is several songs back to back (about 8), then idle until the next one.
* **Events**: ``skip`` (ms_played a few seconds, more likely for songs outside one's
  favourites), ``complete`` (the whole song), ``play`` (stopped part-way, typically the last
  song of a session), ``like`` (an instant action right after a play, ms_played 0).
* **HetRec lastfm-2k**: users and artists come from the dataset; each user picks artists in
  proportion to their play counts (no exploration) and listens in proportion to their total
  count (mean two sessions a day), so the stream's user x artist counts follow the dataset's.

Everything is drawn from ``random.Random`` streams seeded by ``(seed, listener)``: the same
config gives the same events, event ids included.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import json
import logging
import math
import random
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Queue

import pydantic_core

from encore.errors import ConfigurationError, DatasetError, EncoreError
from encore.settings import Settings

log = logging.getLogger(__name__)

HETREC_LASTFM_2K = "hetrec-lastfm-2k"
DATASET_DIRS = {HETREC_LASTFM_2K: "hetrec2011-lastfm-2k"}

# Share of listeners by country and the UTC offset used for their time of day (whole
# hours; one zone per country is enough to move the daily peak around the globe).
COUNTRIES: dict[str, tuple[float, int]] = {
    "US": (0.26, -5), "GB": (0.08, 0), "DE": (0.07, 1), "BR": (0.07, -3), "MX": (0.05, -6),
    "FR": (0.05, 1), "IN": (0.04, 5), "SE": (0.04, 1), "JP": (0.04, 9), "CA": (0.04, -5),
    "AU": (0.03, 10), "ES": (0.03, 1), "IT": (0.03, 1), "NL": (0.03, 1), "PL": (0.03, 1),
    "AR": (0.02, -3), "TR": (0.02, 3), "NO": (0.02, 1), "FI": (0.02, 2), "KR": (0.02, 9),
    "ZA": (0.01, 2), "NG": (0.01, 1),
}  # fmt: skip
DEVICES: dict[str, float] = {
    "mobile": 0.55, "desktop": 0.18, "web": 0.08, "smart_speaker": 0.06, "tablet": 0.05,
    "car": 0.04, "tv": 0.03, "other": 0.01,
}  # fmt: skip
# Relative activity by local hour, 0h..23h: night trough, commute and evening peaks.
DIURNAL = (
    0.30, 0.18, 0.10, 0.06, 0.05, 0.07, 0.18, 0.45, 0.70, 0.65, 0.60, 0.62,
    0.68, 0.65, 0.62, 0.65, 0.75, 0.88, 0.95, 1.00, 0.98, 0.90, 0.72, 0.50,
)  # fmt: skip
MEAN_DIURNAL = sum(DIURNAL) / len(DIURNAL)
MEAN_TRACKS_PER_SESSION = 8
MEAN_SESSIONS_PER_DAY = 2.0
FIELDS = (
    "schema_version", "event_id", "user_id", "song_id", "start_time", "end_time",
    "ms_played", "event_type", "device_type", "country_code",
)  # fmt: skip


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. The same config always yields the same events."""

    seed: int = 0
    start: datetime = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    duration: timedelta = timedelta(hours=1)
    users: int = 10_000
    """Listeners in the population (most are idle at any moment, as in life)."""
    artists: int = 2_000
    songs_per_artist: int = 10
    zipf_exponent: float = 1.1
    mean_skip_rate: float = 0.25
    dataset: str | None = None
    """``hetrec-lastfm-2k`` to take listeners and artists from HetRec play counts."""
    dataset_root: Path | None = None
    """Folder holding ``hetrec2011-lastfm-2k/``; default ``settings.datasets.resolve()``."""
    max_events: int | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ConfigurationError(f"start must be timezone-aware, got {self.start}")
        if self.duration <= timedelta(0):
            raise ConfigurationError(f"duration must be positive, got {self.duration}")
        if self.dataset is not None and self.dataset not in DATASET_DIRS:
            raise ConfigurationError(
                f"unknown dataset {self.dataset!r}; known: {sorted(DATASET_DIRS)}"
            )


# --------------------------------------------------------------------------- population


@dataclass
class Catalog:
    artist_ids: list[str]
    song_counts: list[int]
    artist_cum: list[float]
    """Cumulative global popularity of artists, for exploration picks."""

    def song_id(self, artist: int, rng: random.Random) -> str:
        k = _zipf_index(self.song_counts[artist], 1.0, rng)
        return f"a{self.artist_ids[artist]}-s{k}"


@dataclass
class Listener:
    user_id: str
    country: str
    utc_offset_h: int
    device: str
    favourites: list[int]
    favourite_cum: list[float]
    exploration: float
    sessions_per_day: float
    skip_propensity: float
    like_rate: float


def _cumulative(weights: Iterable[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(cum: list[float], rng: random.Random) -> int:
    return bisect.bisect_right(cum, rng.random() * cum[-1])


_ZIPF_CUM: dict[tuple[int, float], list[float]] = {}


def _zipf_index(n: int, exponent: float, rng: random.Random) -> int:
    cum = _ZIPF_CUM.get((n, exponent))
    if cum is None:
        cum = _ZIPF_CUM[(n, exponent)] = _cumulative(1 / (k**exponent) for k in range(1, n + 1))
    return _pick(cum, rng)


_COUNTRY_NAMES = list(COUNTRIES)
_COUNTRY_CUM = _cumulative(share for share, _ in COUNTRIES.values())
_DEVICE_NAMES = list(DEVICES)
_DEVICE_CUM = _cumulative(DEVICES.values())


def _listener_traits(seed: int, user_id: str) -> tuple[random.Random, str, str, float, float]:
    rng = random.Random(f"{seed}/listener/{user_id}")
    country = _COUNTRY_NAMES[_pick(_COUNTRY_CUM, rng)]
    device = _DEVICE_NAMES[_pick(_DEVICE_CUM, rng)]
    return rng, country, device, rng.betavariate(2, 6), rng.betavariate(1.2, 40)


def build_synthetic_population(config: SimulationConfig) -> tuple[Catalog, list[Listener]]:
    """A Zipf catalogue and ``config.users`` listeners (see the module docstring)."""
    rng = random.Random(f"{config.seed}/catalog")
    upper = max(3, 2 * config.songs_per_artist - 3)
    catalog = Catalog(
        artist_ids=[str(a) for a in range(config.artists)],
        song_counts=[rng.randint(3, upper) for _ in range(config.artists)],
        artist_cum=_cumulative(
            1 / (rank**config.zipf_exponent) for rank in range(1, config.artists + 1)
        ),
    )
    skip_scale = config.mean_skip_rate / 0.25  # betavariate(2, 6) has mean 0.25
    listeners = []
    for index in range(config.users):
        user_id = f"u{index}"
        rng, country, device, skip, like = _listener_traits(config.seed, user_id)
        favourites = sorted({_pick(catalog.artist_cum, rng) for _ in range(rng.randint(3, 12))})
        listeners.append(
            Listener(
                user_id=user_id,
                country=country,
                utc_offset_h=COUNTRIES[country][1],
                device=device,
                favourites=favourites,
                favourite_cum=_cumulative(rng.expovariate(1) for _ in favourites),
                exploration=rng.uniform(0.1, 0.4),
                sessions_per_day=rng.lognormvariate(math.log(1.5), 0.8),
                skip_propensity=min(0.9, skip * skip_scale),
                like_rate=like,
            )
        )
    return catalog, listeners


def load_hetrec_play_counts(root: Path) -> list[tuple[str, str, int]]:
    """``(userID, artistID, weight)`` rows of HetRec lastfm-2k's ``user_artists.dat``.

    ``root`` is the datasets folder holding ``hetrec2011-lastfm-2k/``.

    Raises:
        DatasetError: the file is missing or a row is not ``user<TAB>artist<TAB>count``.
    """
    path = Path(root) / DATASET_DIRS[HETREC_LASTFM_2K] / "user_artists.dat"
    if not path.is_file():
        raise DatasetError(f"HetRec lastfm-2k play counts not found: expected {path}")
    rows = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        header = next(lines, "").split()
        if header[:3] != ["userID", "artistID", "weight"]:
            raise DatasetError(f"{path}: expected header 'userID artistID weight', got {header}")
        for number, line in enumerate(lines, start=2):
            parts = line.split()
            if not parts:
                continue
            try:
                user, artist, weight = parts[0], parts[1], int(parts[2])
            except (IndexError, ValueError) as error:
                raise DatasetError(
                    f"{path}:{number}: expected 'user<TAB>artist<TAB>count', got {line!r}"
                ) from error
            if weight > 0:
                rows.append((user, artist, weight))
    if not rows:
        raise DatasetError(f"{path} holds no play counts")
    return rows


def build_hetrec_population(
    config: SimulationConfig, rows: list[tuple[str, str, int]]
) -> tuple[Catalog, list[Listener]]:
    """Listeners and artists from HetRec play counts (see the module docstring)."""
    artist_ids = sorted({artist for _, artist, _ in rows}, key=int)
    artist_index = {artist: i for i, artist in enumerate(artist_ids)}
    rng = random.Random(f"{config.seed}/catalog")
    totals: Counter[str] = Counter()
    per_artist: Counter[str] = Counter()
    for user, artist, weight in rows:
        totals[user] += weight
        per_artist[artist] += weight
    catalog = Catalog(
        artist_ids=artist_ids,
        song_counts=[rng.randint(3, max(3, 2 * config.songs_per_artist - 3)) for _ in artist_ids],
        artist_cum=_cumulative(per_artist[a] for a in artist_ids),
    )
    by_user: dict[str, list[tuple[int, int]]] = {}
    for user, artist, weight in rows:
        by_user.setdefault(user, []).append((artist_index[artist], weight))
    mean_total = sum(totals.values()) / len(totals)
    skip_scale = config.mean_skip_rate / 0.25
    listeners = []
    for user in sorted(by_user, key=int):
        user_id = f"u{user}"
        _, country, device, skip, like = _listener_traits(config.seed, user_id)
        artists = sorted(by_user[user])
        listeners.append(
            Listener(
                user_id=user_id,
                country=country,
                utc_offset_h=COUNTRIES[country][1],
                device=device,
                favourites=[a for a, _ in artists],
                favourite_cum=_cumulative(w for _, w in artists),
                exploration=0.0,  # plays follow the dataset's counts only
                sessions_per_day=MEAN_SESSIONS_PER_DAY * totals[user] / mean_total,
                skip_propensity=min(0.9, skip * skip_scale),
                like_rate=like,
            )
        )
    return catalog, listeners


# --------------------------------------------------------------------------- events


def _iso(epoch_ms: int) -> str:
    # the exact text PlayEventV1.to_record() writes: microseconds only when non-zero, 'Z'
    return (_EPOCH + timedelta(milliseconds=epoch_ms)).isoformat().replace("+00:00", "Z")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=200_000)  # seeding a Random per play was a third of the cost
def _song_length_ms(song_id: str) -> int:
    rng = random.Random(zlib.crc32(song_id.encode()))
    return int(min(600_000, max(90_000, rng.lognormvariate(math.log(210_000), 0.3))))


def _listen(
    listener: Listener, catalog: Catalog, seed: int, start_ms: int, end_ms: int
) -> Iterator[tuple[int, dict]]:
    """One listener's events between ``start_ms`` and ``end_ms``, as ``(end_ms, record)``."""
    rng = random.Random(f"{seed}/sessions/{listener.user_id}")
    # Sessions: Poisson at the peak rate, thinned by the local time-of-day curve.
    peak_per_ms = listener.sessions_per_day / MEAN_DIURNAL / 86_400_000
    offset_ms = listener.utc_offset_h * 3_600_000
    now = start_ms
    while True:
        now += int(rng.expovariate(peak_per_ms)) + 1
        if now >= end_ms:
            return
        hour = ((now + offset_ms) // 3_600_000) % 24
        if rng.random() >= DIURNAL[hour]:
            continue
        device = listener.device if rng.random() < 0.8 else _DEVICE_NAMES[_pick(_DEVICE_CUM, rng)]
        tracks = 1 + int(rng.expovariate(1 / (MEAN_TRACKS_PER_SESSION - 1)))
        for position in range(tracks):
            explore = not listener.favourites or rng.random() < listener.exploration
            if explore:
                artist = _pick(catalog.artist_cum, rng)
            else:
                artist = listener.favourites[_pick(listener.favourite_cum, rng)]
            song_id = catalog.song_id(artist, rng)
            length = _song_length_ms(song_id)
            p_skip = min(0.95, listener.skip_propensity * (1.5 if explore else 0.85))
            if rng.random() < p_skip:
                event_type = "skip"
                # a skip is under 30 s of listening, as streaming services count them
                played = min(length, 29_999, 500 + int(rng.lognormvariate(math.log(6_000), 0.7)))
            elif (position == tracks - 1 and rng.random() < 0.4) or rng.random() < 0.06:
                event_type = "play"  # stopped part-way: end of a session, or a pause
                played = rng.randint(30_000, length - 1)
            else:
                event_type = "complete"
                played = length
            paused = rng.randint(5_000, 120_000) if rng.random() < 0.03 else 0
            finish = now + played + paused
            if finish > end_ms:
                return
            yield finish, _record(rng, listener, song_id, now, finish, played, event_type, device)
            if event_type != "skip" and rng.random() < listener.like_rate:
                yield finish, _record(rng, listener, song_id, finish, finish, 0, "like", device)
            # the next song starts at once after a skip, after a short gap otherwise
            now = finish + (0 if event_type == "skip" else rng.randint(0, 2_000))


def _record(
    rng: random.Random,
    listener: Listener,
    song_id: str,
    start_ms: int,
    end_ms: int,
    ms_played: int,
    event_type: str,
    device: str,
) -> dict:
    return {
        "schema_version": 1,
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "user_id": listener.user_id,
        "song_id": song_id,
        "start_time": _iso(start_ms),
        "end_time": _iso(end_ms),
        "ms_played": ms_played,
        "event_type": event_type,
        "device_type": device,
        "country_code": listener.country,
    }


def build_population(config: SimulationConfig) -> tuple[Catalog, list[Listener]]:
    """The catalogue and listeners of ``config``: synthetic, or from its dataset."""
    if config.dataset is None:
        return build_synthetic_population(config)
    root = config.dataset_root
    if root is None:
        from encore.settings import get_settings

        root = get_settings().datasets.resolve()
        if root is None:
            raise DatasetError(
                f"dataset {config.dataset!r} needs the datasets folder: set "
                "ENCORE_DATASETS__ROOT to the folder holding hetrec2011-lastfm-2k/"
            )
    return build_hetrec_population(config, load_hetrec_play_counts(root))


def _tagged(stream: Iterator[tuple[int, dict]], index: int) -> Iterator[tuple[int, int, int, dict]]:
    for seq, (finish, record) in enumerate(stream):
        yield finish, index, seq, record


def generate_events(config: SimulationConfig) -> Iterator[dict]:
    """Valid v1 play events of ``config``'s span, in ``end_time`` order, as JSON-ready dicts.

    Each dict equals ``PlayEventV1.model_validate(d).to_record()``. Lazy: events are made as
    they are consumed, so an hour of a large population costs little memory.
    """
    catalog, listeners = build_population(config)
    start_ms = int(config.start.timestamp() * 1000)
    end_ms = start_ms + int(config.duration.total_seconds() * 1000)
    streams = [_listen(listener, catalog, config.seed, start_ms, end_ms) for listener in listeners]
    # ties on end_ms are broken by listener index, then by order within the listener's
    # stream (a like ends with its play), so the order is deterministic
    merged = heapq.merge(*(_tagged(stream, index) for index, stream in enumerate(streams)))
    records = (record for *_, record in merged)
    if config.max_events is not None:
        records = itertools.islice(records, config.max_events)
    yield from records


# --------------------------------------------------------------------------- faults


@dataclass
class FaultStats:
    """What ``inject_faults`` did: valid records passed, duplicates and malformed added."""

    valid: int = 0
    duplicates: int = 0
    malformed: int = 0
    malformed_kinds: Counter[str] = field(default_factory=Counter)


def _truncated_json(record: dict, rng: random.Random) -> bytes:
    text = json.dumps(record, separators=(",", ":")).encode()
    return text[: rng.randint(1, len(text) - 2)]


def _without_field(record: dict, rng: random.Random) -> dict:
    record.pop(rng.choice(["user_id", "song_id", "start_time", "event_type", "ms_played"]))
    return record


MALFORMED_KINDS: dict[str, Callable[[dict, random.Random], bytes | dict]] = {
    "invalid_json": _truncated_json,
    "missing_field": _without_field,
    "bad_enum": lambda r, rng: {**r, "event_type": rng.choice(["pause", "PLAY", "stop"])},
    "bad_device": lambda r, rng: {**r, "device_type": "fridge"},
    "negative_ms_played": lambda r, rng: {**r, "ms_played": -rng.randint(1, 100_000)},
    "unknown_field": lambda r, rng: {**r, "mood": "happy"},
    "wrong_type": lambda r, rng: {**r, "ms_played": "lots"},
    "naive_time": lambda r, rng: {**r, "start_time": r["start_time"].rstrip("Z")},
    "end_before_start": lambda r, rng: {**r, "end_time": "2000-01-01T00:00:00Z", "ms_played": 0},
    "bad_country": lambda r, rng: {**r, "country_code": "Sweden"},
}


def inject_faults(
    records: Iterable[dict],
    duplicates: float = 0.0,
    malformed: float = 0.0,
    seed: int = 0,
    stats: FaultStats | None = None,
) -> Iterator[bytes | dict]:
    """``records`` with faults mixed in, as a flaky client and a buggy one would send them.

    Every input record is passed through once. In addition, each one is re-sent later
    (same dict, same ``event_id``, 1 to 100 records afterwards, as a client retry would)
    with probability ``duplicates``, and followed by a malformed record with probability
    ``malformed``. Malformed records carry a fresh ``event_id`` (so they never collide with a
    valid one) and are either ``bytes`` that are not JSON or dicts that break the v1 contract
    in one way (``MALFORMED_KINDS``). Counts go to ``stats`` if given.
    """
    if not (0 <= duplicates <= 1 and 0 <= malformed <= 1):
        raise ConfigurationError(
            f"fractions must be within [0, 1], got duplicates={duplicates} malformed={malformed}"
        )
    stats = stats if stats is not None else FaultStats()
    rng = random.Random(f"{seed}/faults")
    kinds = list(MALFORMED_KINDS)
    pending: list[tuple[int, int, dict]] = []  # (due position, tie-breaker, record)
    for position, record in enumerate(records, start=1):
        while pending and pending[0][0] < position:
            stats.duplicates += 1
            yield heapq.heappop(pending)[2]
        stats.valid += 1
        yield record
        if duplicates and rng.random() < duplicates:
            heapq.heappush(pending, (position + rng.randint(1, 100), position, record))
        if malformed and rng.random() < malformed:
            kind = rng.choice(kinds)
            broken = dict(record, event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            stats.malformed += 1
            stats.malformed_kinds[kind] += 1
            yield MALFORMED_KINDS[kind](broken, rng)
    while pending:
        stats.duplicates += 1
        yield heapq.heappop(pending)[2]


# --------------------------------------------------------------------------- sending


@dataclass
class SendReport:
    """What a send did. ``sent`` counts records the target acknowledged."""

    target: str
    sent: int = 0
    rejected: int = 0
    """Records the API refused with 422 (malformed ones, when faults are injected)."""
    failed: int = 0
    """Records not delivered after retries (the target was down or refused the client)."""
    retries: int = 0
    requests: int = 0
    duplicates: int = 0
    malformed: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return (self.sent + self.rejected) / self.elapsed_s if self.elapsed_s else 0.0

    def take_fault_counts(self, stats: FaultStats | None) -> None:
        if stats is not None:
            self.duplicates, self.malformed = stats.duplicates, stats.malformed


def paced(items: Iterable, rate: float | None) -> Iterator:
    """``items`` at no more than ``rate`` per second (as fast as possible when ``None``)."""
    if not rate:
        yield from items
        return
    started = time.monotonic()
    for count, item in enumerate(items):
        ahead = started + count / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        yield item


def _key_of(record: bytes | dict) -> bytes | None:
    user = record.get("user_id") if isinstance(record, dict) else None
    return user.encode() if isinstance(user, str) else None


def _value_of(record: bytes | dict) -> bytes:
    if isinstance(record, bytes):
        return record
    return json.dumps(record, separators=(",", ":")).encode()


def send_to_kafka(
    settings: Settings,
    records: Iterable[bytes | dict],
    *,
    topic: str | None = None,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    faults: FaultStats | None = None,
    timeout_s: float = 60.0,
) -> SendReport:
    """Produce ``records`` straight to the play-events topic, keyed by ``user_id``.

    Dicts are sent as compact JSON (for a valid record, the bytes of
    ``PlayEventV1.to_json_bytes()``), bytes as they are, so malformed records reach the
    topic unchanged. Uses ``acks="all"`` with idempotence, and waits for every ack.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    topic = topic or settings.kafka.play_events_topic
    report = SendReport(target=f"kafka:{settings.kafka.servers}/{topic}")
    started = time.monotonic()
    try:
        producer = KafkaProducer(
            bootstrap_servers=settings.kafka.servers.split(","),
            client_id="encore-simulator",
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            batch_size=512 * 1024,
        )
    except KafkaError as error:
        raise EncoreError(f"Kafka at {settings.kafka.servers} is unreachable: {error!r}") from error
    lock = threading.Lock()

    def delivered(_metadata: object) -> None:
        with lock:
            report.sent += 1

    def lost(error: Exception) -> None:
        with lock:
            report.failed += 1
            if len(report.errors) < 5:
                report.errors.append(repr(error))

    offered = 0
    try:
        for record in paced(records, rate):
            future = producer.send(topic, value=_value_of(record), key=_key_of(record))
            future.add_callback(delivered).add_errback(lost)
            offered += 1
            if progress is not None and offered % 1000 == 0:
                progress(1000)
        producer.flush(timeout=timeout_s)
    finally:
        producer.close(timeout=timeout_s)
    if progress is not None:
        progress(offered % 1000)
    report.requests = offered
    report.failed += offered - report.sent - report.failed
    report.elapsed_s = time.monotonic() - started
    report.take_fault_counts(faults)
    return report


def _batches(records: Iterable[bytes | dict], batch_size: int) -> Iterator[list[dict] | bytes]:
    """Dicts grouped into batches; bytes (not JSON) alone, since no batch can hold them."""
    batch: list[dict] = []
    for record in records:
        if isinstance(record, bytes):
            yield record
            continue
        batch.append(record)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def post_to_api(
    base_url: str,
    token: str,
    records: Iterable[bytes | dict],
    batch_size: int = 500,
    concurrency: int = 2,
    *,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    faults: FaultStats | None = None,
    max_retries: int = 5,
    timeout_s: float = 30.0,
) -> SendReport:
    """POST ``records`` to ``{base_url}/api/v1/playback-events`` in batches.

    ``concurrency`` threads post at once. A 422 names the bad items: they are counted as
    ``rejected`` and the rest of the batch is posted again (the API accepts a batch whole or
    not at all). 503s and connection errors are retried with backoff, the same events again
    (the pipeline de-duplicates by ``event_id``). Records that are bytes (not JSON) are
    posted alone and come back 422.

    Raises:
        EncoreError: nothing answers at ``base_url``.
    """
    import httpx

    report = SendReport(target=f"api:{base_url}")
    try:  # fail at once, not after every batch's retries, when nothing listens there
        httpx.get(base_url.rstrip("/") + "/api/v1/health", timeout=timeout_s)
    except httpx.TransportError as error:
        raise EncoreError(
            f"the API at {base_url} is unreachable ({error!r}); start it with `encore api`"
        ) from error
    lock = threading.Lock()
    queue: Queue[list[dict] | bytes | None] = Queue(maxsize=concurrency * 2)
    url = base_url.rstrip("/") + "/api/v1/playback-events"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def count(**deltas: int) -> None:
        with lock:
            for name, delta in deltas.items():
                setattr(report, name, getattr(report, name) + delta)

    def note(error: str) -> None:
        with lock:
            if len(report.errors) < 5:
                report.errors.append(error)

    def post(client: httpx.Client, item: list[dict] | bytes) -> None:
        size = 1 if isinstance(item, bytes) else len(item)
        body = item if isinstance(item, bytes) else _batch_body(item)
        attempt = 0
        while True:
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.TransportError as error:
                status, detail = None, repr(error)
            else:
                status, detail = response.status_code, response.text[:300]
            count(requests=1)
            if status == 202:
                count(sent=size)
                return
            if status == 422 and isinstance(item, list):
                bad = {e["index"] for e in response.json().get("errors", [])}
                if None in bad or not bad:
                    count(rejected=size)
                    return
                count(rejected=len(bad))
                item = [record for i, record in enumerate(item) if i not in bad]
                if not item:
                    return
                size, body = len(item), _batch_body(item)
                continue
            if status == 422:
                count(rejected=size)
                return
            if (status is None or status >= 500) and attempt < max_retries:
                attempt += 1
                count(retries=1)
                time.sleep(min(5.0, 0.2 * 2**attempt))
                continue
            count(failed=size)
            note(f"HTTP {status}: {detail}")
            return

    def worker() -> None:
        with httpx.Client(timeout=timeout_s) as client:
            while (item := queue.get()) is not None:
                post(client, item)
                if progress is not None:
                    progress(1 if isinstance(item, bytes) else len(item))

    started = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        for item in _batches(paced(records, rate), batch_size):
            queue.put(item)
    finally:
        for _ in threads:
            queue.put(None)
        for thread in threads:
            thread.join()
    report.elapsed_s = time.monotonic() - started
    report.take_fault_counts(faults)
    return report


def _batch_body(records: list[dict]) -> bytes:
    # pydantic-core's encoder is ~3x faster than json.dumps; the API only needs valid JSON
    return pydantic_core.to_json({"events": records})
