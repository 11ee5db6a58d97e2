"""The ingestion job's sink: one PyFlink function that turns each raw micro-batch into commits.

It receives one row per lane and ``commit_interval_ms`` (``job.BATCH_FIELDS``): the lane, the
window end, and the batch's Kafka records as parallel arrays (raw value, partition, offset,
broker timestamp). Per batch, synchronously (nothing is buffered in Python between
checkpoints, see job.py):

1. sort by (partition, offset), and set aside the records at or below what bronze covers
   (a replay after a restore: counted as ``skipped``; a bronze commit records the highest
   offset of its batch, rejects and duplicates included, since they were handled first) and
   rejects the rejected table already holds;
2. validate each new record with the shared validator (``parse.parse_record``: strict JSON
   types, time bounds against the broker timestamp);
3. keep the first copy of each ``event_id`` (``dedup.RecentIds``, reloaded from bronze when
   the sink starts, so a restore decides every copy as the undisturbed run did);
4. Redis: trending counts, recent plays, event-time progress (one transaction, skipping
   offsets it already applied: ``redis_skipped``);
5. Delta: the rejected records at once; the kept events join the lane's *pending* rows
   (Flink keyed list state, part of every checkpoint), committed to bronze (offset-tied)
   once they reach ``bronze_target_rows`` or the oldest has waited ``bronze_max_delay_ms``
   (a timer): under load every micro-batch is a commit of thousands of rows, when quiet a
   commit gathers many batches, so the table does not gain a tiny file per second;
6. trending windows the watermark has passed: their counts, read from Redis, MERGEd into
   ``gold.trending_songs_realtime``.

The pending rows are safe for the same reason the micro-batch window is: they are Flink
state, checkpointed with the Kafka offsets. After a restore they are committed (the writer
skips any the crashed run had committed after that checkpoint) and their ids join the
de-duplication ids. Redis is written per micro-batch (its freshness does not wait for the
Delta cadence); both sides skip what they applied by offset.

Each micro-batch appends a ``"sink": "batch"`` JSON line to
``$ENCORE_HOME/logs/ingest-commits.jsonl`` and each bronze commit a ``"sink": "bronze"``
line (read by the tests and the benchmark). Crash points for tests are
``faults.FaultInjector``'s.
Runs in the Flink environment's Python (embedded in the JVM in thread mode).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext

from encore.settings import Settings
from encore.tables import PLAY_EVENTS_REJECTED, TRENDING_SONGS
from pipelines.ingest.parse import PARSED_FIELDS
from pipelines.ingest.state import commits_log

_PARSED_NAMES = [name for name, _ in PARSED_FIELDS]


class LakeSink(KeyedProcessFunction):
    """Writes each micro-batch to its tables, records summary lines, emits nothing. Keyed by
    lane (the pending bronze rows are keyed state).

    ``settings`` are the job's, pickled with the function: the sink does not read its own
    environment.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        import redis
        from pyflink.common import Types
        from pyflink.datastream.state import ListStateDescriptor

        from encore.tables import PLAY_EVENTS
        from pipelines.ingest.delta_sink import OffsetTiedWriter, open_table
        from pipelines.ingest.faults import FaultInjector
        from pipelines.ingest.state import checkpoints_dir

        settings = self.settings
        self.topic = settings.kafka.play_events_topic
        self.lanes = settings.flink.ingest_parallelism
        self.bronze = OffsetTiedWriter(PLAY_EVENTS, settings, self.topic)
        self.rejected = OffsetTiedWriter(PLAY_EVENTS_REJECTED, settings, self.topic)
        self.trending = open_table(TRENDING_SONGS, settings)
        self.redis_client = redis.Redis.from_url(settings.redis.effective_url)
        self.lane_state: dict[int, tuple[Any, Any]] = {}
        self.faults = FaultInjector(settings.flink.fault, checkpoints_dir(settings), self.topic)
        self.log_path = commits_log(settings)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pending = runtime_context.get_list_state(
            ListStateDescriptor("bronze-pending", Types.PICKLED_BYTE_ARRAY())
        )
        # per lane: (rows pending, when the oldest pending batch arrived, epoch ms)
        self.pending_since: dict[int, tuple[int, int]] = {}

    def _lane(self, lane: int) -> tuple[Any, Any]:
        """The lane's de-duplication ids and Redis aggregates (made on its first batch: a
        subtask may serve several lanes)."""
        if lane not in self.lane_state:
            from pipelines.ingest.aggregates import RedisAggregates
            from pipelines.ingest.dedup import RecentIds, stored_ids

            ttl_s = self.settings.flink.dedup_ttl_s
            partitions = (
                None
                if self.lanes == 1
                else {
                    p
                    for p in range(self.settings.kafka.play_events_partitions)
                    if p % self.lanes == lane
                }
            )
            recent = RecentIds(ttl_s)
            recent.load(stored_ids(self.settings, partitions, ttl_s))
            # rows restored pending from a checkpoint were kept before the crash
            restored = list(self.pending.get() or [])
            now = time.time()
            recent.load((event_id, now) for entry in restored for event_id in entry["event_id"])
            if restored:
                rows = sum(len(entry["event_id"]) for entry in restored)
                self.pending_since[lane] = (rows, int(now * 1000))
            aggregates = RedisAggregates(self.redis_client, self.settings, self.topic, lane)
            self.lane_state[lane] = (recent, aggregates)
        return self.lane_state[lane]

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[str]:
        started = time.perf_counter()
        lane, batch_end, payloads, partitions, offsets, arrivals = value
        summary = self.write_batch(lane, payloads, partitions, offsets, arrivals)
        summary |= {"sink": "batch", "lane": lane, "batch_end": str(batch_end)}
        self._log(summary, started)
        rows, since = self.pending_since.get(lane, (0, 0))
        if rows and (
            rows >= self.settings.flink.bronze_target_rows
            or time.time() * 1000 - since >= self.settings.flink.bronze_max_delay_ms
        ):
            self._commit(lane)
        elif rows:
            ctx.timer_service().register_processing_time_timer(
                since + self.settings.flink.bronze_max_delay_ms
            )
        yield from ()

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[str]:
        lane = ctx.get_current_key()
        # after a restore the first call for a lane may be this timer (restored with the
        # pending rows it was set for): load the lane, so those rows are seen and committed
        self._lane(lane)
        rows, since = self.pending_since.get(lane, (0, 0))
        due = since + self.settings.flink.bronze_max_delay_ms
        if rows and timestamp >= due:
            self._commit(lane)
        elif rows:  # restored rows count their wait from the restore: come back then
            ctx.timer_service().register_processing_time_timer(due)
        yield from ()

    def _commit(self, lane: int) -> None:
        """Commit the lane's pending rows to bronze in one offset-tied commit."""
        started = time.perf_counter()
        entries = list(self.pending.get() or [])
        columns: dict[str, list] = {}
        covered: dict[int, int] = {}
        for entry in entries:
            for name, values in entry.items():
                if name == "covered":
                    for partition, offset in values.items():
                        covered[partition] = max(covered.get(partition, -1), offset)
                else:
                    columns.setdefault(name, []).extend(values)
        received = len(columns.get("event_id", []))
        columns["ingested_at"] = [datetime.now(UTC)] * received
        rows = self.bronze.write(columns, covered) if received else 0
        self.faults.reached("after_delta_commit")
        self.faults.reached("batch_committed")
        self.pending.clear()
        self.pending_since.pop(lane, None)
        summary = {
            "sink": "bronze",
            "lane": lane,
            "batches": len(entries),
            "rows": rows,
            "skipped": received - rows,
            "version": self.bronze.delta.version(),
            "offsets": self.bronze.last_versions if rows else {},
        }
        self._log(summary, started)

    def _log(self, summary: dict[str, Any], started: float) -> None:
        summary |= {
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        # one whole line per append, so a reader never sees half a summary
        with open(self.log_path, "a") as log:
            log.write(json.dumps(summary) + "\n")

    def write_batch(
        self, lane: int, payloads: Any, partitions: Any, offsets: Any, arrivals: Any
    ) -> dict[str, Any]:
        from pipelines.ingest.parse import parse_record

        recent, aggregates = self._lane(lane)
        started = time.perf_counter()
        bounds = self.settings.events
        self.faults.batch_started(partitions, offsets)
        received = len(payloads)
        # 1. replays: what bronze or rejected committed (rows of one partition arrive in
        # offset order; sorting makes "first copy" the lowest offset even within a batch)
        order = sorted(range(received), key=lambda i: (partitions[i], offsets[i]))
        bronze_done = {p: self.bronze.committed(p) for p in set(partitions)}
        rejected_done = {p: self.rejected.committed(p) for p in set(partitions)}
        valid: list[tuple] = []
        valid_at: list[tuple[int, int]] = []
        invalid: list[tuple] = []
        invalid_at: list[tuple[int, int]] = []
        skipped = 0
        covered: dict[int, int] = {}
        for i in order:
            partition, offset = partitions[i], offsets[i]
            covered[partition] = offset
            if offset <= bronze_done[partition]:
                skipped += 1  # bronze's commits cover every record up to their offset
                continue
            # 2. the shared validator, against the broker's timestamp
            arrival = datetime.fromisoformat(arrivals[i]).replace(tzinfo=UTC)
            parsed = parse_record(payloads[i], arrival, bounds)
            if parsed.reason is None:
                valid.append(parsed)
                valid_at.append((partition, offset))
            else:
                if offset <= rejected_done[partition]:
                    skipped += 1
                    continue
                invalid.append(parsed)
                invalid_at.append((partition, offset))
        parsed_at = time.perf_counter()
        # 3. first copy of each event id wins
        first = recent.keep_first(row.event_id for row in valid)
        kept = [row for row, keep in zip(valid, first, strict=True) if keep]
        kept_at = [at for at, keep in zip(valid_at, first, strict=True) if keep]
        columns = _columns(kept, kept_at)
        # 4. Redis, then 5. Delta
        redis_started = time.perf_counter()
        redis_rows = aggregates.apply(columns) if kept else 0
        redis_ms = round((time.perf_counter() - redis_started) * 1000, 1)
        redis_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.faults.reached("after_redis")
        delta_started = time.perf_counter()
        rejected_rows = self._write_rejected(invalid, invalid_at) if invalid else 0
        delta_ms = round((time.perf_counter() - delta_started) * 1000, 1)
        # the kept rows wait for the lane's next bronze commit, in Flink state; the batch's
        # coverage (its rejects are committed, its duplicates decided) goes with them
        if kept:
            for carried_only_here in ("reason", "raw_payload", "event_time_us"):
                columns.pop(carried_only_here)
            self.pending.add(columns | {"covered": covered})
            rows, since = self.pending_since.get(lane, (0, int(time.time() * 1000)))
            self.pending_since[lane] = (rows + len(kept), since)
        # 6. windows now closed
        trending_rows = self._publish_trending(aggregates)
        return {
            "received": received,
            "kept": len(kept),
            "skipped": skipped,
            "duplicates": len(valid) - len(kept),
            "rejected": rejected_rows,
            "redis_rows": redis_rows,
            "redis_skipped": len(kept) - redis_rows,
            "parse_ms": round((parsed_at - started) * 1000, 1),
            "redis_ms": redis_ms,
            "rejected_ms": delta_ms,
            "redis_at": redis_at,
            "redis_offsets": {str(p): o for p, o in covered.items()},
            "trending_rows": trending_rows,
            "pending_rows": self.pending_since.get(lane, (0, 0))[0],
            "recent_ids": len(recent),
        }

    def _write_rejected(self, invalid: list[tuple], at: list[tuple[int, int]]) -> int:
        now = datetime.now(UTC)
        return self.rejected.write(
            {
                "raw_payload": [row.raw_payload for row in invalid],
                "reason": [row.reason for row in invalid],
                "topic": [self.topic] * len(invalid),
                "kafka_partition": [p for p, _ in at],
                "kafka_offset": [o for _, o in at],
                "rejected_at": [now] * len(invalid),
                "rejected_date": [now.date()] * len(invalid),
            }
        )

    def _publish_trending(self, aggregates: Any) -> int:
        import pyarrow as pa

        from pipelines.ingest.aggregates import merge_trending, trending_rows

        closed = aggregates.closed_windows()
        if not closed:
            return 0
        batch = pa.table(
            trending_rows(aggregates.window_counts(closed)), schema=TRENDING_SONGS.arrow_schema()
        )
        if batch.num_rows:
            merge_trending(self.trending, batch)
        aggregates.published(closed)
        return batch.num_rows


def _columns(rows: list[tuple], at: list[tuple[int, int]]) -> dict[str, list]:
    """Parsed records (``parse.ParsedRecord``) as column lists, with their Kafka position."""
    if not rows:
        columns: dict[str, list] = {name: [] for name in _PARSED_NAMES}
    else:
        columns = dict(zip(_PARSED_NAMES, map(list, zip(*rows, strict=True)), strict=True))
    columns["kafka_partition"] = [p for p, _ in at]
    columns["kafka_offset"] = [o for _, o in at]
    return columns
