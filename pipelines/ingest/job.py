"""Play-events ingestion (PyFlink): Kafka -> validate -> dedup -> Delta bronze, exactly once.

Inputs: the Kafka topic ``settings.kafka.play_events_topic`` (v1 play events as JSON).
Outputs:
  - ``bronze.play_events``: every valid event once (dedup by ``event_id``), by event date;
  - ``bronze.play_events_rejected``: every record that fails the v1 contract, with the reason;
  - ``gold.trending_songs_realtime``: plays per country and song per event-time window;
  - Redis ``trending:v1:<country>`` (plays in the current window, a sorted set) and
    ``recent:v1:<user>`` (that user's last N plays, newest first), both with TTLs.
Schedule: runs continuously (``encore ingest start``); restarts resume from the latest
retained checkpoint in ``$ENCORE_HOME/flink/checkpoints``.

Shape of the job (all state in Java operators, Python only where it must be)::

    Kafka (raw bytes + partition/offset metadata)
      -> Python UDF: encore.events validation vs arrival  (pipelines.ingest.parse)
      -> rejected rows ---------------------------> micro-batch "rejected" --+
      -> valid rows -> ROW_NUMBER dedup on event_id (keyed state, TTL)        |
           -> micro-batch "bronze" (ARRAY_AGG per column) --------------------+-> UNION ALL
           -> event-time TUMBLE count -> micro-batch "trending" --------------+      |
                                                                                     v
    one Python sink (pipelines.ingest.sinks): bronze -> Redis then Delta (delta_sink,
    aggregates); rejected -> Delta; trending -> Delta MERGE. A micro-batch is one
    ``commit_interval_ms`` processing-time window.

Why micro-batches made by Flink SQL windows: a Python function has no checkpoint hooks, so a
Python sink that buffered rows in its own memory would lose them if the process died after a
checkpoint but before its commit. Here the buffering happens in a processing-time window
(Java state, part of every checkpoint) and the Python sink writes each emitted batch
synchronously; the checkpoint barrier reaches the sink only after the batches before it were
committed. Replays of batches committed after the last checkpoint are skipped by the
offset-tied Delta app transactions (delta_sink) and the offset hash in Redis (aggregates).

Parallelism is 1 on purpose: exactly-once at the sink relies on the rows of each Kafka
partition arriving in offset order, and a keyed shuffle (the dedup) at a parallelism above 1
interleaves a partition's rows from several subtasks. One Delta writer per table also avoids
commit conflicts. CPU per event bounds the job (see docs/ingestion.md).

Run: ``python -m pipelines.ingest.job`` in the Flink environment (``encore ingest start``
does that, with ``--restore`` pointing at the latest checkpoint).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from encore.engines import flink_configuration
from encore.settings import REPO_ROOT, EventsSettings, Settings, get_settings
from encore.tables import PLAY_EVENTS
from pipelines.ingest.parse import EVENT_FIELDS, PARSED_FIELDS, SINK_COLUMNS, SOURCE_FIELDS
from pipelines.ingest.state import GROUP_ID, checkpoints_dir

log = logging.getLogger("pipelines.ingest.job")

# Columns are derived from the bronze table in the registry (and parse.EVENT_FIELDS), so
# an added event field needs no edit here.
BRONZE_COLUMNS = [name for name in PLAY_EVENTS.column_names if name not in SINK_COLUMNS]
"""What the dedup keeps and the bronze micro-batch carries: the registry's bronze columns
minus the ones the sink stamps (``parse.SINK_COLUMNS``)."""
BRONZE_BATCH_COLUMNS = [*BRONZE_COLUMNS, "event_time_us"]
"""The bronze micro-batch: bronze columns plus the time Redis trending counts by."""
REJECTED_COLUMNS = ["raw_payload", "reason", "topic", "kafka_partition", "kafka_offset"]
TRENDING_COLUMNS = ["window_start_us", "window_end_us", "country_code", "song_id", "plays"]
KIND_COLUMNS = {
    "bronze": BRONZE_BATCH_COLUMNS,
    "rejected": REJECTED_COLUMNS,
    "trending": TRENDING_COLUMNS,
}
# every column a micro-batch may carry, with its SQL type, in the order the sink reads them
BATCH_COLUMNS = (
    dict(EVENT_FIELDS)
    | dict(SOURCE_FIELDS)
    | {
        "event_time_us": "BIGINT",
        "raw_payload": "STRING",
        "reason": "STRING",
        "topic": "STRING",
        "window_start_us": "BIGINT",
        "window_end_us": "BIGINT",
        "plays": "BIGINT",
    }
)


def job_configuration(settings: Settings, restore_from: str | None) -> dict[str, str]:
    """Flink options of this job on top of the platform's (see module docstring for why 1)."""
    checkpoints = checkpoints_dir(settings)
    conf = flink_configuration(settings) | {
        "parallelism.default": "1",
        "pipeline.name": "encore-ingest",
        "execution.checkpointing.dir": checkpoints.as_uri(),
        "execution.checkpointing.storage": "filesystem",
        # keep checkpoints when the job dies or is cancelled: `encore ingest start` resumes
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "2",
        "execution.checkpointing.min-pause": "500 ms",
        "state.backend.type": settings.flink.state_backend,
        "execution.checkpointing.incremental": "true",
        # RocksDB writes an info LOG per operator into the Flink log folder otherwise
        "state.backend.rocksdb.log.level": "HEADER_LEVEL",
        "table.exec.state.ttl": f"{settings.flink.dedup_ttl_s} s",
        # the Python workers: bigger bundles amortise the JVM<->Python round trip, the time
        # bound keeps a quiet stream flowing (freshness)
        "python.fn-execution.bundle.size": "5000",
        "python.fn-execution.bundle.time": "100",
        "python.fn-execution.arrow.batch.size": "5000",
    }
    conf |= python_configuration(settings)
    if restore_from:
        conf["execution.state-recovery.path"] = restore_from
    return conf


def python_configuration(settings: Settings) -> dict[str, str]:
    """Where the job's Python functions run (``settings.flink.python_execution_mode``).

    Thread mode embeds CPython in the JVM (pemja). The embedded interpreter computes its
    ``sys.path`` from the base installation, not from the venv (a venv is recognised only by
    the ``pyvenv.cfg`` next to the executable it was started from, and the JVM was not), so
    ``pemja`` and every other package of the Flink venv are missing unless the venv's
    site-packages are on ``python.pythonpath``; the checkout goes there too (the job's code).
    """
    import site

    paths = [str(REPO_ROOT), *site.getsitepackages()]
    return {
        "python.execution-mode": settings.flink.python_execution_mode,
        "python.executable": sys.executable,
        "python.pythonpath": os.pathsep.join(paths),
    }


def _source_ddl(settings: Settings, start_offsets: dict[int, int] | None) -> str:
    if start_offsets:
        specific = ";".join(f"partition:{p},offset:{o}" for p, o in sorted(start_offsets.items()))
        startup = (
            "'scan.startup.mode' = 'specific-offsets', "
            f"'scan.startup.specific-offsets' = '{specific}'"
        )
    else:
        startup = "'scan.startup.mode' = 'earliest-offset'"
    return f"""
        CREATE TEMPORARY TABLE play_events_source (
            payload BYTES,
            topic STRING METADATA VIRTUAL,
            kafka_partition INT METADATA FROM 'partition' VIRTUAL,
            kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
            -- set by the broker (the topic is LogAppendTime): the arrival the time bounds
            -- and the trending clamp use, the same on every replay
            arrival TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL
        ) WITH (
            'connector' = 'kafka',
            'topic' = '{settings.kafka.play_events_topic}',
            'properties.bootstrap.servers' = '{settings.kafka.servers}',
            'properties.group.id' = '{GROUP_ID}',
            'properties.isolation.level' = 'read_committed',
            {startup},
            'format' = 'raw'
        )
    """


def quoted(name: str) -> str:
    """A column name as a Flink SQL identifier: registry names can be SQL keywords
    (``variant`` names a type since Flink 2.1), so generated SQL quotes every one."""
    return f"`{name}`"


def _micro_batch_sql(kind: str, view: str, interval_ms: int) -> str:
    """One row per processing-time window of ``view``: the kind, the window end, and every
    column of BATCH_COLUMNS as an array (NULL for the columns this kind does not carry)."""
    carried = KIND_COLUMNS[kind]
    arrays = ",\n".join(
        f"ARRAY_AGG({quoted(name)}) AS {quoted(name)}"
        if name in carried
        else f"CAST(NULL AS ARRAY<{sql}>) AS {quoted(name)}"
        for name, sql in BATCH_COLUMNS.items()
    )
    size = f"INTERVAL '{interval_ms / 1000:.3f}' SECOND"
    return f"""
        SELECT CAST('{kind}' AS STRING) AS kind, window_end AS batch_end, {arrays}
        FROM TABLE(TUMBLE(TABLE {view}, DESCRIPTOR(proctime), {size}))
        GROUP BY window_start, window_end
    """


def build(settings: Settings, restore_from: str | None, start_offsets: dict[int, int] | None):
    """Assemble the job on a fresh StreamExecutionEnvironment; returns the environment."""
    from pyflink.common import Configuration, Types
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import DataTypes, Schema, StreamTableEnvironment
    from pyflink.table.udf import udf

    from pipelines.ingest.sinks import LakeSink

    config = Configuration()
    for key, value in job_configuration(settings, restore_from).items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    t_env = StreamTableEnvironment.create(env)

    row_type = DataTypes.ROW(
        [DataTypes.FIELD(name, getattr(DataTypes, sql)()) for name, sql in PARSED_FIELDS]
    )
    t_env.create_temporary_system_function(
        "parse_play_event", udf(ParsePlayEvent(settings.events), result_type=row_type)
    )
    t_env.execute_sql(_source_ddl(settings, start_offsets))

    fields = ", ".join(f"r.{quoted(name)} AS {quoted(name)}" for name, _ in PARSED_FIELDS)
    parsed = t_env.sql_query(f"""
        SELECT topic, kafka_partition, kafka_offset, {fields}
        FROM (
            SELECT topic, kafka_partition, kafka_offset, parse_play_event(payload, arrival) AS r
            FROM play_events_source
        )
    """)
    # Through a DataStream and back: the parse runs once however many branches read it
    # (two to_data_stream calls on one table would plan the source and UDF twice).
    with_proctime = Schema.new_builder().column_by_expression("proctime", "PROCTIME()").build()
    parsed_stream = t_env.to_data_stream(parsed)
    t_env.create_temporary_view("parsed", t_env.from_data_stream(parsed_stream, with_proctime))

    # ---- rejects
    t_env.create_temporary_view(
        "rejected", t_env.sql_query("SELECT * FROM parsed WHERE reason IS NOT NULL")
    )

    # ---- dedup: first occurrence of each event_id wins; state expires after the TTL
    kept = ", ".join(quoted(name) for name in BRONZE_BATCH_COLUMNS)
    deduped = t_env.sql_query(f"""
        SELECT {kept} FROM (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proctime) AS rn
            FROM parsed WHERE reason IS NULL
        ) WHERE rn = 1
    """)
    deduped_stream = t_env.to_data_stream(deduped)
    t_env.create_temporary_view("deduped", t_env.from_data_stream(deduped_stream, with_proctime))

    # ---- trending: event-time tumbling windows, final counts once the watermark passes.
    # Event time is min(start_time, arrival) (parse): a client clock ahead of the broker's
    # cannot push the watermark past the plays still arriving, so nothing current is late.
    window_s = settings.flink.trending_window_s
    with_rowtime = (
        Schema.new_builder()
        .column_by_expression("rowtime", "TO_TIMESTAMP_LTZ(event_time_us / 1000, 3)")
        .watermark("rowtime", f"rowtime - INTERVAL '{settings.flink.trending_lateness_s}' SECOND")
        .build()
    )
    t_env.create_temporary_view(
        "deduped_events", t_env.from_data_stream(deduped_stream, with_rowtime)
    )
    counts = t_env.sql_query(f"""
        SELECT
            UNIX_TIMESTAMP(CAST(window_start AS STRING)) * 1000000 AS window_start_us,
            UNIX_TIMESTAMP(CAST(window_end AS STRING)) * 1000000 AS window_end_us,
            country_code, song_id, COUNT(*) AS plays
        FROM TABLE(TUMBLE(
            TABLE deduped_events, DESCRIPTOR(rowtime), INTERVAL '{window_s}' SECOND(9)))
        GROUP BY window_start, window_end, country_code, song_id
    """)
    t_env.create_temporary_view(
        "trending_counts", t_env.from_data_stream(t_env.to_data_stream(counts), with_proctime)
    )

    # ---- one stream of micro-batches of every kind, into one Python sink (one Python
    # worker for all writes instead of one per sink: each worker costs memory, start-up time
    # and a copy of every row it is sent)
    interval = settings.flink.commit_interval_ms
    batches = t_env.sql_query(
        "\nUNION ALL\n".join(
            [
                _micro_batch_sql("bronze", "deduped", interval),
                _micro_batch_sql("rejected", "rejected", interval),
                _micro_batch_sql("trending", "trending_counts", interval),
            ]
        )
    )
    sink = LakeSink(settings, list(BATCH_COLUMNS))
    t_env.to_data_stream(batches).flat_map(sink, output_type=Types.STRING()).name(
        "sinks: Delta bronze, rejected, trending; Redis"
    ).print()
    return env


class ParsePlayEvent:
    """The UDF: ``parse_record`` with the contract's time bounds (pickled with the job)."""

    def __init__(self, bounds: EventsSettings) -> None:
        self.bounds = bounds

    def __call__(self, payload: bytes | None, arrival: datetime):
        from pyflink.common import Row

        from pipelines.ingest.parse import parse_record

        return Row(*parse_record(payload, arrival, self.bounds))


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--restore", help="checkpoint (chk-N folder) to resume from")
    parser.add_argument(
        "--start-offsets",
        help='JSON {"partition": offset} to start from when there is no checkpoint',
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = get_settings()
    offsets = (
        {int(p): int(o) for p, o in json.loads(args.start_offsets).items()}
        if args.start_offsets
        else None
    )
    env = build(settings, args.restore, offsets)
    print(
        json.dumps({"started": datetime.now(UTC).isoformat(), "restore": args.restore}),
        flush=True,
    )
    env.execute("encore-ingest")


if __name__ == "__main__":
    sys.exit(main())
