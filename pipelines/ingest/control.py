"""Start, stop and inspect the ingestion job (``encore ingest start | stop | status``).

The job runs as ``python -m pipelines.ingest.job`` in the Flink environment under
``encore.supervisor``, like the platform services (it is the ``ingest`` job of ``encore up``,
``down``, ``status`` and ``logs``): ``<pid> <start-ticks>`` in ``$ENCORE_HOME/run/ingest.pid``
(stop signals exactly that process group), output in ``$ENCORE_HOME/logs/ingest.log``.

Resuming: ``start`` restores the newest retained checkpoint under
``$ENCORE_HOME/flink/checkpoints`` (source offsets, dedup state, pending micro-batches). With
no checkpoint it starts each partition after the highest offset already committed to Delta
(bronze and rejected), or from the earliest offset on a fresh lake.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from encore import supervisor
from encore.errors import EncoreError
from encore.flinkenv import flink_command, flink_env
from encore.settings import Settings
from encore.tables import PLAY_EVENTS, PLAY_EVENTS_REJECTED
from pipelines.ingest.state import GROUP_ID, checkpoints_dir, checkpoints_root, commits_log

NAME = "ingest"
MODULE = "pipelines.ingest.job"
CLIENT_ID = "encore-ingest-ctl"


class IngestError(EncoreError):
    """The ingestion job could not be started or stopped."""


@dataclass
class IngestStatus:
    running: bool
    pid: int | None
    checkpoint: str | None
    committed: dict[int, int] = field(default_factory=dict)
    """Last offset per partition committed to bronze."""
    lag: dict[int, int] = field(default_factory=dict)
    """Records per partition on Kafka not yet covered by a completed checkpoint."""
    pending: dict[int, int] = field(default_factory=dict)
    """Per lane, valid rows checkpointed but waiting for their bronze commit (the adaptive
    cadence: ``flink.bronze_target_rows`` / ``bronze_max_delay_ms``)."""
    log: str = ""


def flink_log_dir(settings: Settings) -> Path:
    """The mini-cluster's own logs (JobManager, TaskManager, Python workers)."""
    return settings.home / "logs" / "flink"


def latest_checkpoint(settings: Settings) -> Path | None:
    """The newest complete checkpoint (a ``chk-N`` folder whose ``_metadata`` exists)."""
    candidates = checkpoints_dir(settings).glob("*/chk-*/_metadata")
    newest = max(candidates, key=lambda path: path.stat().st_mtime, default=None)
    return newest.parent if newest else None


def prune_checkpoints(settings: Settings, keep: Path | None) -> None:
    """Delete the checkpoints of earlier runs except the job folder holding ``keep``.

    The job restoring from ``keep`` makes its own checkpoints in a new folder; the next
    ``start`` restores from those and prunes this one.
    """
    root = checkpoints_dir(settings)
    # other state versions' checkpoints (and the layout before versions) can never be
    # restored by this job: see state.state_version
    for other in checkpoints_root(settings).glob("*"):
        if other != root:
            shutil.rmtree(other, ignore_errors=True)
    if not root.is_dir():
        return
    for job_dir in root.iterdir():
        if keep is None or job_dir != keep.parent:
            shutil.rmtree(job_dir, ignore_errors=True)


def kafka_partitions(settings: Settings) -> list[int]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.servers, client_id=CLIENT_ID)
    try:
        return sorted(consumer.partitions_for_topic(settings.kafka.play_events_topic) or [])
    finally:
        consumer.close()


def committed_offsets(settings: Settings, partitions: list[int]) -> dict[str, dict[int, int]]:
    """Last committed offset per partition for bronze and rejected."""
    from pipelines.ingest.delta_sink import committed_offsets as table_offsets

    topic = settings.kafka.play_events_topic
    return {
        table.name: table_offsets(table, settings, topic, partitions)
        for table in (PLAY_EVENTS, PLAY_EVENTS_REJECTED)
    }


def resume_offsets(settings: Settings) -> dict[int, int] | None:
    """Where to start without a checkpoint: just after what bronze covers, per partition.

    A bronze commit records the highest offset of its whole micro-batch (the batch's rejects
    are committed before it, its duplicates decided), so everything up to it is handled.
    Records after it may include rejects already committed (the rejected table's writer
    skips those by its own offsets). A partition bronze never covered starts at the
    earliest offset. Returns None on a fresh lake (earliest offsets).
    """
    partitions = kafka_partitions(settings)
    bronze = committed_offsets(settings, partitions).get(PLAY_EVENTS.name, {})
    offsets = {partition: bronze.get(partition, -1) + 1 for partition in partitions}
    return offsets if any(offsets.values()) else None


def running_pid(settings: Settings) -> int | None:
    return supervisor.running_pid(settings.home, NAME)


def job_command(settings: Settings, fresh: bool = False) -> list[str]:
    """The job's command line: restore the latest checkpoint (unless ``fresh``), or resume
    after the offsets committed to Delta. Prunes the checkpoints it will not restore."""
    checkpoint = None if fresh else latest_checkpoint(settings)
    prune_checkpoints(settings, checkpoint)
    args: list[str] = []
    if checkpoint:
        args += ["--restore", checkpoint.as_uri()]
    else:
        offsets = resume_offsets(settings)
        if offsets:
            args += ["--start-offsets", json.dumps(offsets)]
    return flink_command(settings, MODULE, *args)


def job_env(settings: Settings) -> dict[str, str]:
    flink_log_dir(settings).mkdir(parents=True, exist_ok=True)
    return flink_env(settings) | {
        # PyFlink logs into its package folder by default, shared by every job of the venv
        "FLINK_LOG_DIR": str(flink_log_dir(settings)),
    }


def start(settings: Settings, foreground: bool = False, fresh: bool = False) -> int:
    """Start the job (restoring the latest checkpoint unless ``fresh``); returns its pid.

    In the foreground this blocks until the job ends and returns its exit code instead.
    """
    if running_pid(settings):
        raise IngestError(f"the ingestion job already runs (pid {running_pid(settings)})")
    command = job_command(settings, fresh=fresh)
    if foreground:
        return supervisor.run_foreground(settings.home, NAME, command, env=job_env(settings))
    return supervisor.start(settings.home, NAME, command, env=job_env(settings))


def stop(settings: Settings, timeout_s: float = 30.0, kill: bool = False) -> bool:
    """Stop the job we started (SIGTERM, then SIGKILL after ``timeout_s``; ``kill``: at once).

    Returns whether a job was running. Checkpoints are retained either way.
    """
    return supervisor.stop(settings.home, NAME, timeout_s=timeout_s, kill=kill)


def kafka_lag(settings: Settings, partitions: list[int]) -> dict[int, int]:
    """Records per partition not yet covered by a completed checkpoint.

    The job's Kafka source commits its offsets to the consumer group when a checkpoint
    completes, and a checkpoint completes only after every batch before it was written, so
    group offset == end offset means everything on the topic is in bronze, rejected, a
    duplicate, or pending for bronze in Flink state (:func:`pending_rows`). (Delta's own
    offsets cannot say this: a trailing duplicate is in neither.)
    """
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.kafka.play_events_topic
    # a consumer of the job's group that never subscribes: it reads the group's committed
    # offsets without joining (or disturbing) the group
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.servers,
        client_id=CLIENT_ID,
        group_id=GROUP_ID,
        enable_auto_commit=False,
    )
    try:
        partitions_ = [TopicPartition(topic, p) for p in partitions]
        ends = consumer.end_offsets(partitions_)
        return {tp.partition: ends[tp] - (consumer.committed(tp) or 0) for tp in partitions_}
    finally:
        consumer.close()


def pending_rows(settings: Settings) -> dict[int, int]:
    """Per lane, the valid rows the sink holds pending for bronze (Flink state), from the
    newest lines of its commit log: a batch line tells what is pending after it, a bronze
    commit line that nothing is."""
    path = commits_log(settings)
    if not path.exists():
        return {}
    with open(path, "rb") as log:
        start = max(0, path.stat().st_size - 256 * 1024)
        log.seek(start)
        tail = log.read().decode(errors="replace").splitlines()[1 if start else 0 :]
    pending: dict[int, int] = {}
    for line in tail:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        lane = int(entry.get("lane", 0))
        pending[lane] = 0 if entry["sink"] == "bronze" else int(entry.get("pending_rows", 0))
    return pending


def status(settings: Settings) -> IngestStatus:
    """Whether the job runs, its latest checkpoint, bronze offsets and the lag behind Kafka."""
    pid = running_pid(settings)
    checkpoint = latest_checkpoint(settings)
    partitions = kafka_partitions(settings)
    return IngestStatus(
        running=pid is not None,
        pid=pid,
        checkpoint=str(checkpoint) if checkpoint else None,
        committed=committed_offsets(settings, partitions)[PLAY_EVENTS.name],
        lag=kafka_lag(settings, partitions),
        pending=pending_rows(settings),
        log=str(supervisor.log_file(settings.home, NAME)),
    )


def wait_until_caught_up(settings: Settings, timeout_s: float = 120.0) -> IngestStatus:
    """Block until a checkpoint covers everything on Kafka (see :func:`kafka_lag`) and no
    valid row waits for its bronze commit: everything on the topic is in bronze, rejected,
    or was a duplicate."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = status(settings)
        if not any(current.lag.values()) and not any(current.pending.values()):
            return current
        if not current.running:
            raise IngestError(f"the ingestion job is not running; see {current.log}")
        if time.monotonic() > deadline:
            raise IngestError(
                f"ingestion still {sum(current.lag.values())} records behind (and "
                f"{sum(current.pending.values())} pending for bronze) after "
                f"{timeout_s:.0f} s; see {current.log}"
            )
        time.sleep(0.5)
