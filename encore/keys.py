"""The Redis contract: every key Encore writes, its value format and its TTL.

Written by the ingestion job and the recommenders' publishers; read by the recommendation
service, the listener API and dashboards, which import the readers below rather than
spelling a key (the core names no part: it only holds the contract). Versioned by prefix
(``v1``): a new format is a new prefix.

=====================================  ==========================================  =========
key                                    value                                       TTL
=====================================  ==========================================  =========
``trending:v1:<country>``              sorted set song_id -> plays in the          redis_ttl
                                       country's current (latest) window
``trending:v1:<country>:<start_s>``    sorted set song_id -> plays in the window    redis_ttl
                                       starting at epoch second ``start_s``
``recent:v1:<user>``                   list of JSON entries (:func:`recent_entry`), redis_ttl
                                       newest first, at most ``flink.recent_plays``
``recs:v1:<model>:<user>``             JSON (:func:`recs_entry`): one registered    recs_ttl_s
                                       model version's top list for the listener
``ingest:v1:offsets:<topic>``          hash partition -> last Kafka offset applied  none
``ingest:v1:trending-latest-window``   hash country -> start_s of its current      redis_ttl
                                       window (the job's marker)
``ratelimit:v1:<limits key>``          the listener API's auth attempt windows      window
                                       (the ``limits`` library's moving windows)
=====================================  ==========================================  =========

``recs_ttl_s`` is ``settings.serving.recs_ttl_s`` (a list not refreshed is not served).
``redis_ttl`` is ``settings.flink.redis_ttl_s``, reset on every write. The offsets hash has
no TTL: it is what makes a replay after a crash apply nothing twice.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TRENDING_PREFIX = "trending:v1"
RECENT_PREFIX = "recent:v1"
RECS_PREFIX = "recs:v1"
OFFSETS_PREFIX = "ingest:v1:offsets"
LATEST_WINDOW_KEY = "ingest:v1:trending-latest-window"
WATERMARK_PREFIX = "ingest:v1:trending-watermark"
OPEN_WINDOWS_PREFIX = "ingest:v1:trending-open"
RATELIMIT_PREFIX = "ratelimit:v1"


def trending_key(country: str, window_start_s: int | None = None) -> str:
    """The country's current trending key, or one window's (``window_start_s`` epoch s)."""
    base = f"{TRENDING_PREFIX}:{country}"
    return base if window_start_s is None else f"{base}:{window_start_s}"


def recent_key(user_id: str) -> str:
    return f"{RECENT_PREFIX}:{user_id}"


def recs_key(model: str, user_id: str) -> str:
    return f"{RECS_PREFIX}:{model}:{user_id}"


def offsets_key(topic: str) -> str:
    return f"{OFFSETS_PREFIX}:{topic}"


def watermark_key(topic: str) -> str:
    """Hash: per ingestion lane, the latest event time (epoch µs) it applied to trending."""
    return f"{WATERMARK_PREFIX}:{topic}"


def open_windows_key(topic: str, lane: int) -> str:
    """Set of ``<country>|<window_start_s>`` trending windows a lane counted into and has not
    published to ``gold.trending_songs_realtime`` yet."""
    return f"{OPEN_WINDOWS_PREFIX}:{topic}:{lane}"


def recent_entry(
    event_id: str, song_id: str, event_type: str, start_us: int, ms_played: int
) -> str:
    """One ``recent:v1`` list element (stable JSON: the same play always reads the same).

    Formatted by hand, not json.dumps: this runs once per event in the job's only Python
    sink, and every string here is contract-validated (ids match ``[A-Za-z0-9_\\-:.]+``,
    event types are an enum), so none needs escaping.
    """
    seconds, micros = divmod(start_us, 1_000_000)
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return (
        f'{{"event_id":"{event_id}","song_id":"{song_id}","event_type":"{event_type}",'
        f'"start_time":"{start}.{micros:06d}Z","ms_played":{ms_played}}}'
    )


@dataclass(frozen=True)
class RecentPlay:
    """One element of ``recent:v1:<user>``, parsed."""

    event_id: str
    song_id: str
    event_type: str
    start_time: datetime
    ms_played: int


def parse_recent_entry(raw: bytes | str) -> RecentPlay:
    """The inverse of :func:`recent_entry`."""
    entry = json.loads(raw)
    return RecentPlay(
        event_id=entry["event_id"],
        song_id=entry["song_id"],
        event_type=entry["event_type"],
        start_time=datetime.fromisoformat(entry["start_time"]),
        ms_played=int(entry["ms_played"]),
    )


def read_recent_plays(client: Any, user_id: str, n: int = 50) -> list[RecentPlay]:
    """The user's last ``n`` plays, newest first (empty when none or expired)."""
    return [parse_recent_entry(raw) for raw in client.lrange(recent_key(user_id), 0, n - 1)]


def read_current_trending(client: Any, country: str, n: int = 10) -> list[tuple[str, int]]:
    """The country's top ``n`` songs in its current window as (song_id, plays), most first."""
    rows = client.zrange(trending_key(country), 0, n - 1, desc=True, withscores=True)
    return [
        (song.decode() if isinstance(song, bytes) else song, int(plays)) for song, plays in rows
    ]


@dataclass(frozen=True)
class PrecomputedRecs:
    """One ``recs:v1:<model>:<user>`` value: a model version's list, best first."""

    model_version: str
    created_at: datetime
    songs: list[tuple[str, float]]


def recs_entry(model_version: str, created_at: datetime, songs: list[tuple[str, float]]) -> str:
    """The JSON value of a ``recs:v1`` key (scores rounded to 6 digits: ranks, not maths)."""
    return json.dumps(
        {
            "model_version": model_version,
            "created_at": created_at.isoformat(),
            "songs": [[song, round(float(score), 6)] for song, score in songs],
        },
        separators=(",", ":"),
    )


def parse_recs_entry(raw: bytes | str) -> PrecomputedRecs:
    """The inverse of :func:`recs_entry`."""
    entry = json.loads(raw)
    return PrecomputedRecs(
        model_version=str(entry["model_version"]),
        created_at=datetime.fromisoformat(entry["created_at"]),
        songs=[(str(song), float(score)) for song, score in entry["songs"]],
    )


def write_recs(client: Any, model: str, user_id: str, recs: PrecomputedRecs, ttl_s: int) -> None:
    """Sets one listener's list with its TTL (``client`` may be a pipeline)."""
    client.set(
        recs_key(model, user_id),
        recs_entry(recs.model_version, recs.created_at, recs.songs),
        ex=ttl_s,
    )


def read_recs(client: Any, model: str, user_id: str) -> PrecomputedRecs | None:
    """The listener's precomputed list for ``model``, or None (none written, or expired)."""
    raw = client.get(recs_key(model, user_id))
    return None if raw is None else parse_recs_entry(raw)
