"""Offset-tied Delta appends: a replayed batch is skipped, atomically with the data (no
services: a local Delta table through delta-rs)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable

from encore.delta import read_lake_table
from encore.settings import Settings
from encore.tables import PLAY_EVENTS_REJECTED
from pipelines.ingest.delta_sink import OffsetTiedWriter, app_id, committed_offsets


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, lake={"root": str(tmp_path / "lake")})


def batch(partitions: list[int], offsets: list[int]) -> dict[str, list]:
    now = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
    return {
        "raw_payload": [f"p{p}o{o}" for p, o in zip(partitions, offsets, strict=True)],
        "reason": ["bad"] * len(offsets),
        "topic": ["play-events"] * len(offsets),
        "kafka_partition": partitions,
        "kafka_offset": offsets,
        "rejected_at": [now] * len(offsets),
        "rejected_date": [date(2026, 11, 23)] * len(offsets),
    }


def payloads(settings: Settings) -> list[str]:
    table = read_lake_table(settings, PLAY_EVENTS_REJECTED)
    return sorted(table.column("raw_payload").to_pylist())


def test_each_commit_records_the_highest_offset_per_partition(settings: Settings) -> None:
    writer = OffsetTiedWriter(PLAY_EVENTS_REJECTED, settings, "play-events")
    assert writer.write(batch([0, 1, 0], [5, 9, 7])) == 3
    table = DeltaTable(PLAY_EVENTS_REJECTED.path(settings))
    assert table.transaction_version(app_id("play-events", 0)) == 7
    assert table.transaction_version(app_id("play-events", 1)) == 9
    assert committed_offsets(PLAY_EVENTS_REJECTED, settings, "play-events", [0, 1, 2]) == {
        0: 7,
        1: 9,
    }


def test_a_replay_after_a_crash_writes_only_what_was_not_committed(settings: Settings) -> None:
    OffsetTiedWriter(PLAY_EVENTS_REJECTED, settings, "play-events").write(
        batch([0, 0, 1], [1, 2, 1])
    )
    # a new process (after a crash), fed from an older checkpoint: offsets overlap
    restarted = OffsetTiedWriter(PLAY_EVENTS_REJECTED, settings, "play-events")
    assert restarted.write(batch([0, 0, 0, 1, 1], [1, 2, 3, 1, 2])) == 2
    assert restarted.write(batch([0, 1], [3, 2])) == 0  # a second replay changes nothing
    assert payloads(settings) == ["p0o1", "p0o2", "p0o3", "p1o1", "p1o2"]
    assert DeltaTable(PLAY_EVENTS_REJECTED.path(settings)).version() == 2


def test_an_empty_table_is_created_with_the_registry_schema(settings: Settings) -> None:
    writer = OffsetTiedWriter(PLAY_EVENTS_REJECTED, settings, "play-events")
    assert writer.write(batch([], [])) == 0
    table = DeltaTable(PLAY_EVENTS_REJECTED.path(settings))
    assert table.metadata().partition_columns == ["rejected_date"]
    assert table.schema().to_arrow().names == PLAY_EVENTS_REJECTED.column_names


def test_a_commit_records_what_its_batch_covered_beyond_its_rows(settings: Settings) -> None:
    """Bronze's commit records the highest offset of its whole micro-batch (rejects and
    duplicates handled elsewhere included): a restart without a checkpoint resumes after it."""
    writer = OffsetTiedWriter(PLAY_EVENTS_REJECTED, settings, "play-events")
    assert writer.write(batch([0, 1], [5, 2]), covered={0: 9, 1: 2, 2: 4}) == 2
    # partition 2 had no row in this commit: nothing is claimed for it
    assert committed_offsets(PLAY_EVENTS_REJECTED, settings, "play-events", [0, 1, 2]) == {
        0: 9,
        1: 2,
    }
    restarted = OffsetTiedWriter(PLAY_EVENTS_REJECTED, settings, "play-events")
    assert restarted.write(batch([0, 0], [8, 10])) == 1  # 8 was covered, 10 is new
