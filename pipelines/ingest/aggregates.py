"""Real-time aggregates of the ingestion job: trending songs and recent plays.

Inputs: micro-batches of de-duplicated play events (column lists, in Kafka offset order per
partition; ``event_time_us`` is ``min(start_time, arrival)``, the time trending counts by)
and, for Delta, final per-window counts from the job's event-time windows.
Outputs:
  - Redis ``trending:v1:<country>:<window_start>``: plays per song in that event-time window
    (sorted set, epoch seconds in the key); ``trending:v1:<country>``: the same for the
    country's most recent window (what the app reads); ``recent:v1:<user>``: the user's last
    N plays, newest first (JSON per entry). All with ``settings.flink.redis_ttl_s``. Key
    names and formats are the contract in ``encore.keys``.
  - ``gold.trending_songs_realtime``: the final counts of each closed window (Delta MERGE).
Schedule: every ``redis_interval_ms`` / ``commit_interval_ms`` inside the running job.

Exactly once in Redis: increments and list pushes are not idempotent, so every batch is one
MULTI/EXEC transaction that also records, in the hash ``ingest:v1:offsets:<topic>``, the last
Kafka offset per partition it applied. Rows at or below those offsets are skipped, so a
replay after a crash changes nothing (the same scheme as the Delta app transactions).
No stuck trending: windows are placed by ``event_time_us``, never later than the record's
arrival (broker time), so one event from a fast or wrong client clock cannot move a
country's current window (the marker ``ingest:v1:trending-latest-window``) into the future;
the marker has the keys' TTL, and on load any entry beyond now + one window is dropped.
The Delta trending table is written by MERGE on (window_start, country_code, song_id) with
final counts, so a replayed window overwrites itself with the same values.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from encore.keys import (
    LATEST_WINDOW_KEY,
    offsets_key,
    recent_entry,
    recent_key,
    trending_key,
)
from encore.settings import Settings


class RedisAggregates:
    """Applies micro-batches of play events to the Redis aggregates, exactly once."""

    def __init__(self, client: Any, settings: Settings, topic: str) -> None:
        self.redis = client
        self.window_s = settings.flink.trending_window_s
        self.recent_n = settings.flink.recent_plays
        self.ttl_s = settings.flink.redis_ttl_s
        self.offsets_key = offsets_key(topic)
        self.committed = {int(p): int(o) for p, o in self.redis.hgetall(self.offsets_key).items()}
        # a marker beyond now + one window was written by an older job from a client's
        # clock (before event times were clamped to arrival): forget it
        horizon = time.time() + self.window_s
        self.latest_window = {
            c.decode() if isinstance(c, bytes) else c: int(w)
            for c, w in self.redis.hgetall(LATEST_WINDOW_KEY).items()
            if int(w) <= horizon
        }

    def apply(self, columns: Mapping[str, Sequence[Any]]) -> int:
        """Apply one batch (``aggregates.REDIS_COLUMNS`` of the job); returns rows applied."""
        partitions = columns["kafka_partition"]
        offsets = columns["kafka_offset"]
        window_us = self.window_s * 1_000_000
        counts: dict[tuple[str, int], Counter] = defaultdict(Counter)
        recent: dict[str, list[str]] = defaultdict(list)
        versions: dict[int, int] = {}
        applied = 0
        for i, (partition, offset) in enumerate(zip(partitions, offsets, strict=True)):
            if offset <= self.committed.get(partition, -1):
                continue  # applied before a crash, replayed from the checkpoint
            versions[partition] = offset
            applied += 1
            start_us = columns["start_time"][i]  # epoch µs, as the job carries times
            window = (columns["event_time_us"][i] // window_us) * self.window_s
            counts[(columns["country_code"][i], window)][columns["song_id"][i]] += 1
            recent[columns["user_id"][i]].append(
                recent_entry(
                    columns["event_id"][i],
                    columns["song_id"][i],
                    columns["event_type"][i],
                    start_us,
                    columns["ms_played"][i],
                )
            )
        if not applied:
            return 0
        pipe = self.redis.pipeline(transaction=True)
        newest: dict[str, int] = {}
        for (country, window), songs in counts.items():
            key = trending_key(country, window)
            for song, plays in songs.items():
                pipe.zincrby(key, plays, song)
            pipe.expire(key, self.ttl_s)
            newest[country] = max(newest.get(country, window), window)
        for (country, window), songs in counts.items():
            latest = self.latest_window.get(country, -1)
            if window == newest[country] and window > latest:
                continue  # copied whole below
            if window == latest:
                for song, plays in songs.items():
                    pipe.zincrby(trending_key(country), plays, song)
        for country, window in newest.items():
            if window > self.latest_window.get(country, -1):
                # the country moved to a new window: its current ranking starts from that
                # window's counts (copied after this batch's increments above)
                pipe.copy(trending_key(country, window), trending_key(country), replace=True)
                pipe.hset(LATEST_WINDOW_KEY, country, window)
            pipe.expire(trending_key(country), self.ttl_s)
        if newest:
            pipe.expire(LATEST_WINDOW_KEY, self.ttl_s)
        for user, entries in recent.items():
            key = recent_key(user)
            pipe.lpush(key, *entries)  # entries are oldest first: the newest ends on top
            pipe.ltrim(key, 0, self.recent_n - 1)
            pipe.expire(key, self.ttl_s)
        pipe.hset(self.offsets_key, mapping={str(p): o for p, o in versions.items()})
        pipe.execute()
        self.committed.update(versions)
        for country, window in newest.items():
            self.latest_window[country] = max(self.latest_window.get(country, -1), window)
        return applied


def trending_rows(columns: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """The job's window counts as ``gold.trending_songs_realtime`` columns (Arrow-ready)."""
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    start = pa.array(columns["window_start_us"], pa.int64()).cast(ts)
    return {
        "window_start": start,
        "window_end": pa.array(columns["window_end_us"], pa.int64()).cast(ts),
        "window_date": start.cast(pa.date32()),
        "country_code": pa.array(columns["country_code"], pa.string()),
        "song_id": pa.array(columns["song_id"], pa.string()),
        "plays": pa.array(columns["plays"], pa.int64()),
    }


def merge_trending(delta_table: Any, batch: Any) -> None:
    """Upsert final window counts: a replayed window rewrites the same values."""
    (
        delta_table.merge(
            source=batch,
            predicate=(
                "t.window_start = s.window_start AND t.country_code = s.country_code "
                "AND t.song_id = s.song_id"
            ),
            source_alias="s",
            target_alias="t",
        )
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
