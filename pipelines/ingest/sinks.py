"""The ingestion job's sinks: PyFlink functions over micro-batches, one commit per batch.

Each receives one row per micro-batch (``batch_end`` then one array per column, in the
column order the job declares) and writes it synchronously, so nothing is buffered in
Python memory between checkpoints. Each appends a one-line JSON summary per batch to
``$ENCORE_HOME/logs/ingest-commits.jsonl`` (what `encore ingest status`, the tests and the
benchmark read) and emits nothing downstream. They run in the Flink environment's Python
worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyflink.datastream.functions import FlatMapFunction, RuntimeContext

from encore.settings import Settings, get_settings
from encore.tables import PLAY_EVENTS, PLAY_EVENTS_REJECTED, TRENDING_SONGS


def _columns(value: Any, names: list[str]) -> dict[str, list]:
    return {name: list(value[i + 1] or []) for i, name in enumerate(names)}


def commits_log(settings: Settings) -> Path:
    return settings.home / "logs" / "ingest-commits.jsonl"


class _BatchSink(FlatMapFunction):
    """Writes each micro-batch, records a summary line, emits nothing."""

    name = "batch"

    def open(self, runtime_context: RuntimeContext) -> None:
        settings = get_settings()
        self._log_path = commits_log(settings)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self.setup(settings)

    def setup(self, settings: Settings) -> None:
        raise NotImplementedError

    def write(self, value: Any) -> dict[str, Any]:
        raise NotImplementedError

    def flat_map(self, value: Any) -> Iterator[str]:
        started = time.perf_counter()
        summary = self.write(value)
        summary |= {
            "sink": self.name,
            "batch_end": str(value[0]),
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        # one whole line per append: concurrent sinks never interleave within a line
        with open(self._log_path, "a") as log:
            log.write(json.dumps(summary) + "\n")
        yield from ()


class BronzeSink(_BatchSink):
    name = "bronze"

    def setup(self, settings: Settings) -> None:
        from pipelines.ingest.delta_sink import OffsetTiedWriter

        self.writer = OffsetTiedWriter(PLAY_EVENTS, settings, settings.kafka.play_events_topic)

    def write(self, value: Any) -> dict[str, Any]:
        from pipelines.ingest.job import BRONZE_COLUMNS

        columns = _columns(value, BRONZE_COLUMNS)
        received = len(columns["event_id"])
        columns["start_time"] = columns.pop("start_us")
        columns["end_time"] = columns.pop("end_us")
        columns["ingested_at"] = [datetime.now(UTC)] * received
        rows = self.writer.write(columns)
        return {
            "rows": rows,
            "skipped": received - rows,
            "version": self.writer.delta.version(),
            "offsets": self.writer.last_versions,
        }


class RejectedSink(_BatchSink):
    name = "rejected"

    def setup(self, settings: Settings) -> None:
        from pipelines.ingest.delta_sink import OffsetTiedWriter

        self.writer = OffsetTiedWriter(
            PLAY_EVENTS_REJECTED, settings, settings.kafka.play_events_topic
        )

    def write(self, value: Any) -> dict[str, Any]:
        from pipelines.ingest.job import REJECTED_COLUMNS

        columns = _columns(value, REJECTED_COLUMNS)
        received = len(columns["reason"])
        now = datetime.now(UTC)
        columns["rejected_at"] = [now] * received
        columns["rejected_date"] = [now.date()] * received
        rows = self.writer.write(columns)
        return {"rows": rows, "skipped": received - rows, "version": self.writer.delta.version()}


class RedisSink(_BatchSink):
    name = "redis"

    def setup(self, settings: Settings) -> None:
        import redis

        from pipelines.ingest.aggregates import RedisAggregates

        client = redis.Redis.from_url(settings.redis.effective_url)
        self.aggregates = RedisAggregates(client, settings, settings.kafka.play_events_topic)

    def write(self, value: Any) -> dict[str, Any]:
        from pipelines.ingest.job import REDIS_COLUMNS

        columns = _columns(value, REDIS_COLUMNS)
        rows = self.aggregates.apply(columns)
        return {"rows": rows, "skipped": len(columns["kafka_offset"]) - rows}


class TrendingSink(_BatchSink):
    name = "trending"

    def setup(self, settings: Settings) -> None:
        from pipelines.ingest.delta_sink import open_table

        self.table = open_table(TRENDING_SONGS, settings)

    def write(self, value: Any) -> dict[str, Any]:
        import pyarrow as pa

        from pipelines.ingest.aggregates import merge_trending, trending_rows
        from pipelines.ingest.job import TRENDING_COLUMNS

        columns = _columns(value, TRENDING_COLUMNS)
        batch = pa.table(trending_rows(columns), schema=TRENDING_SONGS.arrow_schema())
        if batch.num_rows:
            merge_trending(self.table, batch)
        return {"rows": batch.num_rows, "version": self.table.version()}
