"""Where the ingestion job keeps its state: the Kafka group, checkpoints and commit log.

A leaf module (it imports only ``encore``): the job, its sink and ``control`` all read
these names from here, so none of them imports another for a constant.
"""

from __future__ import annotations

from pathlib import Path

from encore.settings import Settings

GROUP_ID = "encore-ingest"
"""The job's Kafka consumer group: its source commits offsets here on each checkpoint."""


def checkpoints_dir(settings: Settings) -> Path:
    return settings.home / "flink" / "checkpoints"


def commits_log(settings: Settings) -> Path:
    """One JSON line per micro-batch the job wrote (sink, rows, offsets, times)."""
    return settings.home / "logs" / "ingest-commits.jsonl"
