"""Where the ingestion job keeps its state: the Kafka group, checkpoints and commit log.

A leaf module (it imports only ``encore``): the job, its sink and ``control`` all read
these names from here, so none of them imports another for a constant.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from encore.settings import Settings

GROUP_ID = "encore-ingest"
"""The job's Kafka consumer group: its source commits offsets here on each checkpoint."""


JOB_GRAPH = "raw-micro-batches-v2"
"""The shape of the job's Flink state; changed whenever the job graph changes, since Flink
cannot restore one graph's checkpoint into another (v2: raw records in the micro-batch
windows; v1 kept parsed rows, de-duplication and trending windows in Flink)."""


def state_version() -> str:
    """A fingerprint of the job graph and the rows it keeps (bronze's columns and types).

    Flink refuses to restore a checkpoint whose row serializer differs from the job's (a
    column added to bronze, such as ``variant``, would loop the job on a
    ``StateMigrationException``). So each version keeps its checkpoints apart: a job whose
    columns changed finds no checkpoint of its own and resumes after the offsets committed
    to Delta (``control.resume_offsets``); its de-duplication ids come from bronze as on
    every start (``dedup``), so nothing is lost or doubled. Since v2 the state holds raw
    records only, so bronze's columns no longer shape it; they stay in the fingerprint
    because a restore across a column change gains nothing and risks a schema mismatch.
    """
    from encore.tables import PLAY_EVENTS

    columns = ";".join(f"{c.name}:{c.dtype}:{c.nullable}" for c in PLAY_EVENTS.columns)
    return hashlib.sha256(f"{JOB_GRAPH}|{columns}".encode()).hexdigest()[:12]


def checkpoints_root(settings: Settings) -> Path:
    return settings.home / "flink" / "checkpoints"


def checkpoints_dir(settings: Settings) -> Path:
    """This state version's checkpoints (see :func:`state_version`)."""
    return checkpoints_root(settings) / f"state-{state_version()}"


def commits_log(settings: Settings) -> Path:
    """One JSON line per micro-batch the job wrote (sink, rows, offsets, times)."""
    return settings.home / "logs" / "ingest-commits.jsonl"
