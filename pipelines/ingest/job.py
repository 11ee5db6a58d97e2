"""Play-events ingestion (PyFlink): Kafka -> micro-batches -> one Python sink, exactly once.

Inputs: the Kafka topic ``settings.kafka.play_events_topic`` (v1 play events as JSON).
Outputs (all written by the sink, ``pipelines.ingest.sinks``):
  - ``bronze.play_events``: every valid event once (first copy of each ``event_id`` kept);
  - ``bronze.play_events_rejected``: every record that fails the v1 contract, with the reason;
  - ``gold.trending_songs_realtime``: plays per country and song per event-time window;
  - Redis ``trending:v1:<country>`` (plays in the current window, a sorted set) and
    ``recent:v1:<user>`` (that user's last N plays, newest first), both with TTLs.
Schedule: runs continuously (``encore ingest start``); restarts resume from the latest
retained checkpoint in ``$ENCORE_HOME/flink/checkpoints``.

Shape of the job: Flink owns the reading, the buffering and the recovery; Python gets each
micro-batch whole, in one crossing::

    Kafka (raw bytes + partition/offset/broker timestamp)
      -> processing-time TUMBLE (commit_interval_ms) per lane (kafka_partition % lanes):
         ARRAY_AGG of the raw records  (Java state: part of every checkpoint)
      -> one row per lane and interval -> Python sink: validate with the shared validator,
         de-duplicate, Redis, Delta bronze / rejected, trending windows to gold

Why so little in Flink SQL: every row that crosses between the JVM and Python, and every
conversion between Flink's table and stream formats, costs CPU per event; the earlier job
(a per-row validation UDF, keyed de-duplication, event-time windows, then per-column
micro-batches into the sink) spent ~220 µs of CPU per event, two thirds in the JVM. Here a
record is read, appended to one window list and handed to Python inside a batch of
thousands; the validator (``encore.events``, the one definition of a valid event) runs in
that batch, as does everything keyed by event content (de-duplication against bronze, the
trending counts in Redis; see the sink).

Why micro-batches in Flink state: a Python function has no checkpoint hooks, so a Python
sink that buffered rows in its own memory would lose them if the process died after a
checkpoint but before its commit. The window is Java state, part of every checkpoint, and
the sink writes each emitted batch synchronously: the checkpoint barrier reaches the sink
only after the batches before it were committed. Replays of batches committed after the
last checkpoint are skipped by the offset-tied Delta app transactions (delta_sink) and the
offset hash in Redis (aggregates).

Lanes (``settings.flink.ingest_parallelism``): the sink relies on each Kafka partition's
rows arriving in offset order. A lane is a set of whole partitions (``partition % lanes``),
grouped by one window key, so one sink subtask sees all of a partition's rows in order;
lanes commit to Delta concurrently (appends on disjoint app transactions do not conflict).

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
from encore.settings import REPO_ROOT, Settings, get_settings
from pipelines.ingest.state import GROUP_ID, checkpoints_dir

log = logging.getLogger("pipelines.ingest.job")

BATCH_FIELDS = ("lane", "batch_end", "payloads", "partitions", "offsets", "arrivals")
"""What each micro-batch row carries to the sink, in order."""


def job_configuration(settings: Settings, restore_from: str | None) -> dict[str, str]:
    """Flink options of this job on top of the platform's (see module docstring for why 1)."""
    checkpoints = checkpoints_dir(settings)
    conf = flink_configuration(settings) | {
        "parallelism.default": str(settings.flink.ingest_parallelism),
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
        # one micro-batch row is one bundle's worth of work: send it to Python at once
        "python.fn-execution.bundle.size": "1",
        "python.fn-execution.bundle.time": "100",
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
            arrival TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
            proctime AS PROCTIME()
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


def micro_batch_sql(settings: Settings) -> str:
    """One row per lane and processing-time interval: the raw records as parallel arrays.

    A null record value (a tombstone) travels as empty bytes, which the validator rejects
    with a reason, so the arrays stay aligned and nothing is dropped silently. The broker
    timestamps travel as text in the session's time zone (UTC; ``table.local-time-zone``):
    thread mode hands Python a Java ``Instant`` object for a timestamp array element.
    """
    size = f"INTERVAL '{settings.flink.commit_interval_ms / 1000:.3f}' SECOND"
    return f"""
        SELECT lane, CAST(window_end AS STRING) AS batch_end,
            ARRAY_AGG(COALESCE(payload, X'')) AS payloads,
            ARRAY_AGG(kafka_partition) AS partitions,
            ARRAY_AGG(kafka_offset) AS offsets,
            ARRAY_AGG(CAST(arrival AS STRING)) AS arrivals
        FROM TABLE(TUMBLE(TABLE play_events_lanes, DESCRIPTOR(proctime), {size}))
        GROUP BY window_start, window_end, lane
    """


def lanes_sql(settings: Settings) -> str:
    """The source's records with their lane (whole partitions per lane)."""
    lanes = settings.flink.ingest_parallelism
    return f"""
        SELECT payload, kafka_partition, kafka_offset, arrival, proctime,
            MOD(kafka_partition, {lanes}) AS lane
        FROM play_events_source
    """


def build(settings: Settings, restore_from: str | None, start_offsets: dict[int, int] | None):
    """Assemble the job on a fresh StreamExecutionEnvironment; returns the environment."""
    from pyflink.common import Configuration, Types
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import StreamTableEnvironment

    from pipelines.ingest.sinks import LakeSink

    config = Configuration()
    for key, value in job_configuration(settings, restore_from).items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    t_env = StreamTableEnvironment.create(env)
    t_env.execute_sql(_source_ddl(settings, start_offsets))
    t_env.create_temporary_view("play_events_lanes", t_env.sql_query(lanes_sql(settings)))
    batches = t_env.sql_query(micro_batch_sql(settings))
    (
        t_env.to_data_stream(batches)
        # PyFlink cannot key a stream of rows holding arrays of bytes (its key_by converts
        # the row type and fails on them): hand each batch on as a pickled tuple instead
        .map(tuple, output_type=Types.PICKLED_BYTE_ARRAY())
        .key_by(lambda batch: batch[0], key_type=Types.INT())  # the lane
        .process(LakeSink(settings), output_type=Types.STRING())
        .name("sink: validate, de-duplicate; Redis, Delta bronze, rejected, trending")
        .print()
    )
    return env


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
