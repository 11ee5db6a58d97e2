"""When and how listeners listen: sessions over the day, turned into v1 play events.

Input: the catalog and population of :mod:`pipelines.simulation.population` (who listens to
what) and a ``SimulationConfig``'s span. Output: ``generate_events``, JSON-ready v1 records
(``PlayEventV1.to_record()`` form, times as ISO-8601 UTC), ordered by ``end_time``.

The model, each piece a plain, documented assumption rather than a fit to real data:

* **Time**: sessions start as a Poisson process thinned by a time-of-day curve in the
  listener's local time (quiet at 4 am, peaks at the commute and in the evening). A session
  is several songs back to back (about 8), then idle until the next one. A song lasts its
  catalog ``duration_ms``. Tastes drift once per simulated day of each listener.
* **Events**: ``skip`` (ms_played a few seconds, early in the song; its likelihood follows
  the listener's tastes, ``population.SKIP_FACTOR``), ``complete`` (the whole song),
  ``play`` (stopped part-way, typically the last song of a session), ``like`` (an instant
  action right after a play, ms_played 0, likelier for favourites, never for dislikes).

Everything is drawn from ``random.Random`` streams seeded by ``(seed, listener)``: the same
config and catalog give the same events, event ids included.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from encore.settings import Settings
from pipelines.simulation.population import (
    LIKE_FACTOR,
    SKIP_FACTOR,
    Catalog,
    Listener,
    SimulationConfig,
    build_population,
    read_catalog,
)

# Relative activity by local hour, 0h..23h: night trough, commute and evening peaks.
DIURNAL = (
    0.30, 0.18, 0.10, 0.06, 0.05, 0.07, 0.18, 0.45, 0.70, 0.65, 0.60, 0.62,
    0.68, 0.65, 0.62, 0.65, 0.75, 0.88, 0.95, 1.00, 0.98, 0.90, 0.72, 0.50,
)  # fmt: skip
MEAN_DIURNAL = sum(DIURNAL) / len(DIURNAL)
MEAN_TRACKS_PER_SESSION = 8

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(epoch_ms: int) -> str:
    # the exact text PlayEventV1.to_record() writes: microseconds only when non-zero, 'Z'
    return (_EPOCH + timedelta(milliseconds=epoch_ms)).isoformat().replace("+00:00", "Z")


def _listen(
    listener: Listener, catalog: Catalog, seed: int, start_ms: int, end_ms: int
) -> Iterator[tuple[int, dict]]:
    """One listener's events between ``start_ms`` and ``end_ms``, as ``(end_ms, record)``."""
    # the start is part of the seed: another hour of the same listeners is other events with
    # other ids (an id repeated across runs would be de-duplicated away downstream)
    rng = random.Random(f"{seed}/sessions/{listener.user_id}/{start_ms}")
    # Sessions: Poisson at the peak rate, thinned by the local time-of-day curve.
    peak_per_ms = listener.sessions_per_day / MEAN_DIURNAL / 86_400_000
    offset_ms = listener.utc_offset_h * 3_600_000
    now = start_ms
    day = 0
    while True:
        now += int(rng.expovariate(peak_per_ms)) + 1
        if now >= end_ms:
            return
        while (now - start_ms) // 86_400_000 > day:
            day += 1
            listener.drift(catalog, rng)
        hour = ((now + offset_ms) // 3_600_000) % 24
        if rng.random() >= DIURNAL[hour]:
            continue
        device = listener.session_device(rng)
        tracks = 1 + int(rng.expovariate(1 / (MEAN_TRACKS_PER_SESSION - 1)))
        for position in range(tracks):
            song = listener.choose_song(catalog, rng)
            song_id, length = catalog.song_ids[song], catalog.duration_ms[song]
            affinity = listener.affinity(catalog, song)
            p_skip = min(0.95, listener.skip_propensity * SKIP_FACTOR[affinity])
            if rng.random() < p_skip:
                event_type = "skip"
                # a skip is under 30 s of listening, as streaming services count them
                played = min(length, 29_999, 500 + int(rng.lognormvariate(math.log(6_000), 0.7)))
            elif (position == tracks - 1 and rng.random() < 0.4) or rng.random() < 0.06:
                event_type = "play"  # stopped part-way: end of a session, or a pause
                # past the 30 s a play counts at (half of a shorter, ingested test song)
                counted = min(30_000, length // 2)
                played = rng.randint(counted, max(counted, length - 1))
            else:
                event_type = "complete"
                played = length
            paused = rng.randint(5_000, 120_000) if rng.random() < 0.03 else 0
            finish = now + played + paused
            if finish > end_ms:
                return
            yield finish, _record(rng, listener, song_id, now, finish, played, event_type, device)
            like = listener.like_rate * LIKE_FACTOR[affinity]
            if event_type != "skip" and rng.random() < like:
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


def _tagged(stream: Iterator[tuple[int, dict]], index: int) -> Iterator[tuple[int, int, int, dict]]:
    for seq, (finish, record) in enumerate(stream):
        yield finish, index, seq, record


def generate_events(
    config: SimulationConfig, catalog: Catalog | None = None, settings: Settings | None = None
) -> Iterator[dict]:
    """Valid v1 play events of ``config``'s span, in ``end_time`` order, as JSON-ready dicts.

    ``catalog`` defaults to the songs in PostgreSQL (``read_catalog(settings)``, settings
    defaulting to ``get_settings()``), read once before the first event. Each dict equals
    ``PlayEventV1.model_validate(d).to_record()``. Lazy: events are made as they are
    consumed, so an hour of a large population costs little memory.

    Raises:
        CatalogEmptyError: the catalog has no songs (run ``encore catalog load``).
    """
    if catalog is None:
        if settings is None:
            from encore.settings import get_settings

            settings = get_settings()
        catalog = read_catalog(settings)
    listeners = build_population(config, catalog)
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
