"""The ingestion job's sink: one PyFlink function writing every micro-batch, one commit each.

It receives one row per micro-batch: ``kind`` (bronze, rejected or trending), ``batch_end``,
then one array per column of ``job.BATCH_COLUMNS``, and writes it synchronously, so nothing
is buffered in Python memory between checkpoints:

- bronze: Redis aggregates first (trending counts by ``event_time_us``, recent plays), then
  the Delta commit;
  both skip offsets they already applied, so the order only matters for freshness;
- rejected: the Delta commit;
- trending: a Delta MERGE of final window counts.

Each batch appends one JSON summary line to ``$ENCORE_HOME/logs/ingest-commits.jsonl`` (read
by the tests and the benchmark) and emits nothing downstream. Runs in the Flink
environment's Python worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pyflink.datastream.functions import FlatMapFunction, RuntimeContext

from encore.settings import Settings
from encore.tables import PLAY_EVENTS, PLAY_EVENTS_REJECTED, TRENDING_SONGS
from pipelines.ingest.state import commits_log


class LakeSink(FlatMapFunction):
    """Writes each micro-batch to its table(s), records a summary line, emits nothing.

    ``settings`` are the job's, pickled with the function: the Python worker does not read
    its own environment. ``columns`` names the arrays of each batch row, in order (the job's
    ``BATCH_COLUMNS``).
    """

    def __init__(self, settings: Settings, columns: list[str]) -> None:
        self.settings = settings
        self.columns = columns

    def open(self, runtime_context: RuntimeContext) -> None:
        import redis

        from pipelines.ingest.aggregates import RedisAggregates
        from pipelines.ingest.delta_sink import OffsetTiedWriter, open_table
        from pipelines.ingest.faults import FaultInjector
        from pipelines.ingest.state import checkpoints_dir

        settings = self.settings
        topic = settings.kafka.play_events_topic
        self.bronze = OffsetTiedWriter(PLAY_EVENTS, settings, topic)
        self.rejected = OffsetTiedWriter(PLAY_EVENTS_REJECTED, settings, topic)
        self.trending = open_table(TRENDING_SONGS, settings)
        self.redis = RedisAggregates(
            redis.Redis.from_url(settings.redis.effective_url), settings, topic
        )
        self.faults = FaultInjector(settings.flink.fault, checkpoints_dir(settings))
        self.log_path = commits_log(settings)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

    def flat_map(self, value: Any) -> Iterator[str]:
        started = time.perf_counter()
        kind = value[0]
        columns = {name: list(value[i + 2]) for i, name in enumerate(self.columns) if value[i + 2]}
        summary = getattr(self, f"_write_{kind}")(columns)
        summary |= {
            "sink": kind,
            "batch_end": str(value[1]),
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        # one whole line per append, so a reader never sees half a summary
        with open(self.log_path, "a") as log:
            log.write(json.dumps(summary) + "\n")
        yield from ()

    def _write_bronze(self, columns: dict[str, list]) -> dict[str, Any]:
        received = len(columns["event_id"])
        self.faults.batch_started()
        redis_started = time.perf_counter()
        redis_rows = self.redis.apply(columns)
        redis_ms = round((time.perf_counter() - redis_started) * 1000, 1)
        redis_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.faults.reached("after_redis")
        columns["ingested_at"] = [datetime.now(UTC)] * received
        rows = self.bronze.write(columns)
        self.faults.reached("after_delta_commit")
        self.faults.reached("batch_committed")
        return {
            "rows": rows,
            "skipped": received - rows,
            "redis_rows": redis_rows,
            "redis_skipped": received - redis_rows,
            "redis_ms": redis_ms,
            "redis_at": redis_at,
            "version": self.bronze.delta.version(),
            "offsets": self.bronze.last_versions,
        }

    def _write_rejected(self, columns: dict[str, list]) -> dict[str, Any]:
        received = len(columns["reason"])
        now = datetime.now(UTC)
        columns["rejected_at"] = [now] * received
        columns["rejected_date"] = [now.date()] * received
        rows = self.rejected.write(columns)
        return {"rows": rows, "skipped": received - rows, "version": self.rejected.delta.version()}

    def _write_trending(self, columns: dict[str, list]) -> dict[str, Any]:
        import pyarrow as pa

        from pipelines.ingest.aggregates import merge_trending, trending_rows

        batch = pa.table(trending_rows(columns), schema=TRENDING_SONGS.arrow_schema())
        if batch.num_rows:
            merge_trending(self.trending, batch)
        return {"rows": batch.num_rows, "version": self.trending.version()}
