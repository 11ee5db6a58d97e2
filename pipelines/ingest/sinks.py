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
5. Delta: the rejected records, then the kept events to bronze (offset-tied commits);
6. trending windows the watermark has passed: their counts, read from Redis, MERGEd into
   ``gold.trending_songs_realtime``.

Each batch appends one JSON summary line to ``$ENCORE_HOME/logs/ingest-commits.jsonl`` (read
by the tests and the benchmark). Crash points for tests are ``faults.FaultInjector``'s.
Runs in the Flink environment's Python (embedded in the JVM in thread mode).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pyflink.datastream.functions import FlatMapFunction, RuntimeContext

from encore.settings import Settings
from encore.tables import PLAY_EVENTS_REJECTED, TRENDING_SONGS
from pipelines.ingest.parse import PARSED_FIELDS
from pipelines.ingest.state import commits_log

_PARSED_NAMES = [name for name, _ in PARSED_FIELDS]


class LakeSink(FlatMapFunction):
    """Writes each micro-batch to its tables, records a summary line, emits nothing.

    ``settings`` are the job's, pickled with the function: the sink does not read its own
    environment.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        import redis

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
        self.faults = FaultInjector(settings.flink.fault, checkpoints_dir(settings))
        self.log_path = commits_log(settings)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

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
            aggregates = RedisAggregates(self.redis_client, self.settings, self.topic, lane)
            self.lane_state[lane] = (recent, aggregates)
        return self.lane_state[lane]

    def flat_map(self, value: Any) -> Iterator[str]:
        started = time.perf_counter()
        lane, batch_end, payloads, partitions, offsets, arrivals = value
        summary = self.write_batch(lane, payloads, partitions, offsets, arrivals)
        summary |= {
            "sink": "bronze",
            "lane": lane,
            "batch_end": str(batch_end),
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        # one whole line per append, so a reader never sees half a summary
        with open(self.log_path, "a") as log:
            log.write(json.dumps(summary) + "\n")
        yield from ()

    def write_batch(
        self, lane: int, payloads: Any, partitions: Any, offsets: Any, arrivals: Any
    ) -> dict[str, Any]:
        from pipelines.ingest.parse import parse_record

        recent, aggregates = self._lane(lane)
        started = time.perf_counter()
        bounds = self.settings.events
        self.faults.batch_started()
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
        columns["ingested_at"] = [datetime.now(UTC)] * len(kept)
        # rejects are committed first, so bronze's offsets may cover the whole batch
        rows = self.bronze.write(columns, covered) if kept else 0
        delta_ms = round((time.perf_counter() - delta_started) * 1000, 1)
        self.faults.reached("after_delta_commit")
        self.faults.reached("batch_committed")
        # 6. windows now closed
        trending_rows = self._publish_trending(aggregates)
        return {
            "received": received,
            "rows": rows,
            "skipped": skipped,
            "duplicates": len(valid) - len(kept),
            "rejected": rejected_rows,
            "redis_rows": redis_rows,
            "redis_skipped": len(kept) - redis_rows,
            "parse_ms": round((parsed_at - started) * 1000, 1),
            "redis_ms": redis_ms,
            "delta_ms": delta_ms,
            "redis_at": redis_at,
            "trending_rows": trending_rows,
            "version": self.bronze.delta.version(),
            "offsets": self.bronze.last_versions if rows else {},
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
