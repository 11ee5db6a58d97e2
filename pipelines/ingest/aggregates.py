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
    open_windows_key,
    recent_entry,
    recent_key,
    trending_key,
    watermark_key,
)
from encore.settings import Settings


class RedisAggregates:
    """Applies micro-batches of play events to the Redis aggregates, exactly once."""

    def __init__(self, client: Any, settings: Settings, topic: str, lane: int = 0) -> None:
        self.redis = client
        self.window_s = settings.flink.trending_window_s
        self.lateness_us = settings.flink.trending_lateness_s * 1_000_000
        self.recent_n = settings.flink.recent_plays
        self.ttl_s = settings.flink.redis_ttl_s
        self.offsets_key = offsets_key(topic)
        self.committed = {int(p): int(o) for p, o in self.redis.hgetall(self.offsets_key).items()}
        # event-time progress and the windows counted but not published to gold yet: kept in
        # Redis with the counts (same transaction), so a restart resumes them exactly
        self.lane = str(lane)
        self.watermark_key = watermark_key(topic)
        self.open_key = open_windows_key(topic, lane)
        self.max_event_us = int(self.redis.hget(self.watermark_key, self.lane) or -1)
        self.open_windows = {_text(m) for m in self.redis.smembers(self.open_key)}
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
        max_event_us = self.max_event_us
        for i, (partition, offset) in enumerate(zip(partitions, offsets, strict=True)):
            if offset <= self.committed.get(partition, -1):
                continue  # applied before a crash, replayed from the checkpoint
            versions[partition] = offset
            applied += 1
            start_us = columns["start_time"][i]  # epoch µs, as the job carries times
            event_us = columns["event_time_us"][i]
            max_event_us = max(max_event_us, event_us)
            window = (event_us // window_us) * self.window_s
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
        pipe = CommandBatch()
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
            # entries are oldest first: the newest ends on top
            for start in range(0, len(entries), CommandBatch.MAX_ARGS):
                pipe.lpush(key, *entries[start : start + CommandBatch.MAX_ARGS])
            pipe.ltrim(key, 0, self.recent_n - 1)
            pipe.expire(key, self.ttl_s)
        # windows this batch counted into that were still open before it (a play in a window
        # the watermark had passed is late: it counts in Redis, not in gold, as in Flink)
        watermark_us = self.max_event_us - self.lateness_us
        opened = {
            f"{country}|{window}"
            for country, window in counts
            if (window + self.window_s) * 1_000_000 > watermark_us
        } - self.open_windows
        opened_list = sorted(opened)
        if opened:
            pipe.sadd(self.open_key, *opened_list)
        if max_event_us > self.max_event_us:
            pipe.hset(self.watermark_key, self.lane, max_event_us)
        pipe.hset(self.offsets_key, mapping={str(p): o for p, o in versions.items()})
        pipe.execute(self.redis)
        self.committed.update(versions)
        self.open_windows |= opened
        self.max_event_us = max_event_us
        for country, window in newest.items():
            self.latest_window[country] = max(self.latest_window.get(country, -1), window)
        return applied

    def closed_windows(self) -> list[tuple[str, int]]:
        """(country, window start s) of open windows the watermark has passed."""
        watermark_s = (self.max_event_us - self.lateness_us) / 1_000_000
        closed = []
        for member in self.open_windows:
            country, _, window = member.rpartition("|")
            if int(window) + self.window_s <= watermark_s:
                closed.append((country, int(window)))
        return sorted(closed, key=lambda pair: (pair[1], pair[0]))

    def window_counts(self, windows: Sequence[tuple[str, int]]) -> dict[str, list]:
        """The final counts of ``windows`` from Redis, as ``trending_rows`` columns input."""
        pipe = self.redis.pipeline(transaction=False)
        for country, window in windows:
            pipe.zrange(trending_key(country, window), 0, -1, withscores=True)
        columns: dict[str, list] = {
            "window_start_us": [],
            "window_end_us": [],
            "country_code": [],
            "song_id": [],
            "plays": [],
        }
        for (country, window), songs in zip(windows, pipe.execute(), strict=True):
            for song, plays in songs:
                columns["window_start_us"].append(window * 1_000_000)
                columns["window_end_us"].append((window + self.window_s) * 1_000_000)
                columns["country_code"].append(country)
                columns["song_id"].append(_text(song))
                columns["plays"].append(int(plays))
        return columns

    def published(self, windows: Sequence[tuple[str, int]]) -> None:
        """Forget ``windows`` once their counts are in gold (a crash before this only means
        they are published again, with the same or a larger count)."""
        if windows:
            members = [f"{country}|{window}" for country, window in windows]
            self.redis.srem(self.open_key, *members)
            self.open_windows -= set(members)


class CommandBatch:
    """Redis commands collected for one batch and run by one Lua script: atomic like
    MULTI/EXEC, but the whole batch travels as one command's arguments, which costs the
    client a fraction of packing thousands of commands one by one (the sink's largest
    per-event cost before). Keys are not declared to the script, so, like the MULTI/EXEC
    before it, this needs a single Redis node, not Redis Cluster."""

    MAX_ARGS = 4000
    """Arguments per command (Lua's ``unpack`` is bounded by its stack, ~8000)."""
    SCRIPT = """
local i = 1
local n = #ARGV
while i <= n do
  local argc = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + argc))
  i = i + argc + 1
end
return n
"""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def _add(self, *command: Any) -> None:
        self.args.append(len(command))
        self.args.extend(command)

    def zincrby(self, key: str, amount: int, member: str) -> None:
        self._add("ZINCRBY", key, amount, member)

    def expire(self, key: str, seconds: int) -> None:
        self._add("EXPIRE", key, seconds)

    def copy(self, source: str, destination: str, replace: bool = False) -> None:
        self._add("COPY", source, destination, *(["REPLACE"] if replace else []))

    def hset(self, key: str, field: str | None = None, value: Any = None, mapping=None) -> None:
        pairs = [] if field is None else [field, value]
        for name, item in (mapping or {}).items():
            pairs += [name, item]
        self._add("HSET", key, *pairs)

    def sadd(self, key: str, *members: str) -> None:
        for start in range(0, len(members), self.MAX_ARGS):
            self._add("SADD", key, *members[start : start + self.MAX_ARGS])

    def lpush(self, key: str, *values: str) -> None:
        self._add("LPUSH", key, *values)

    def ltrim(self, key: str, start: int, end: int) -> None:
        self._add("LTRIM", key, start, end)

    def execute(self, client: Any) -> None:
        if self.args:
            client.eval(self.SCRIPT, 0, *self.args)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
    """Upsert final window counts. A count only ever grows (a window published again after a
    crash, or by another lane that saw more of it, carries the same or a larger count), so
    a larger stored count is kept: the replay cannot lower a published value."""
    from deltalake.exceptions import CommitFailedError

    for attempt in range(5):
        try:
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
                .when_matched_update_all(predicate="s.plays > t.plays")
                .when_not_matched_insert_all()
                .execute()
            )
            return
        except CommitFailedError:  # another lane merged first: re-read and retry
            if attempt == 4:
                raise
            delta_table.update_incremental()
