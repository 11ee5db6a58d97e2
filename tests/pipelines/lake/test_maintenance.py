"""Lake maintenance on a real Delta table written the way the stream writes it (delta-rs, one
small commit per batch, registry schema); no services, no Spark."""

from __future__ import annotations

import dataclasses
import time as time_module
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from encore.delta import read_delta, read_lake_table
from encore.errors import NotFoundError
from encore.settings import Settings, get_settings
from encore.tables import PLAY_EVENTS, PLAY_EVENTS_REJECTED
from pipelines.ingest.delta_sink import OffsetTiedWriter, committed_offsets
from pipelines.lake.maintenance import maintain

TOPIC = "play-events"
# bronze as the registry will declare it (requested for encore/tables.py); set here so the
# test does not depend on that edit
BRONZE = dataclasses.replace(PLAY_EVENTS, extra={"zorder_by": ("song_id", "user_id")})


@pytest.fixture
def today() -> date:
    """The real clock's date when the test starts: delta-rs stamps files with the real clock,
    and maintenance compares those stamps with the day's end. Near midnight, wait for the new
    day so the test's writes all fall on the date it asserts (a suite crossing midnight
    failed with a date taken at import)."""
    now = datetime.now(UTC)
    to_midnight = datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC) - now
    if to_midnight < timedelta(minutes=2):
        time_module.sleep(to_midnight.total_seconds() + 1)
    return datetime.now(UTC).date()


def later(today: date) -> datetime:
    """Maintenance "tomorrow at noon": today's partition has closed, tomorrow's is open."""
    return datetime.combine(today + timedelta(days=1), time(12), tzinfo=UTC)


def lake_settings(tmp_path: Path, retention_hours: int) -> Settings:
    return Settings(
        home=tmp_path,
        lake={"root": str(tmp_path / "lake"), "vacuum_retention_hours": retention_hours},
    )


class Stream:
    """Writes bronze as the Flink job does: OffsetTiedWriter, one commit per small batch."""

    def __init__(self, settings: Settings) -> None:
        self.writer = OffsetTiedWriter(PLAY_EVENTS, settings, TOPIC)
        self.offset = 0

    def commit(self, day: date, rows: int = 5) -> None:
        start = datetime.combine(day, time(8), tzinfo=UTC) + timedelta(seconds=self.offset)
        offsets = list(range(self.offset, self.offset + rows))
        self.offset += rows
        self.writer.write(
            {
                "event_id": [str(uuid.uuid4()) for _ in offsets],
                "user_id": [f"user-{o % 7}" for o in offsets],
                "song_id": [f"song-{o % 11}" for o in offsets],
                "start_time": [start] * rows,
                "end_time": [start + timedelta(seconds=30)] * rows,
                "ms_played": [30_000] * rows,
                "event_type": ["play"] * rows,
                "device_type": ["mobile"] * rows,
                "country_code": ["SE"] * rows,
                "schema_version": [1] * rows,
                "event_date": [day] * rows,
                "kafka_partition": [0] * rows,
                "kafka_offset": offsets,
                "ingested_at": [start] * rows,
                "variant": [None] * rows,
            }
        )


def rows(settings: Settings) -> pa.Table:
    return read_lake_table(settings, PLAY_EVENTS).sort_by("event_id")


def _strategy(commit: dict) -> str | None:
    return commit.get("operationMetrics", {}).get("plannerStrategy")


def data_files_on_disk(settings: Settings) -> set[str]:
    root = Path(PLAY_EVENTS.path(settings))
    return {
        str(p.relative_to(root)) for p in root.rglob("*.parquet") if "_delta_log" not in p.parts
    }


def referenced_files(settings: Settings) -> set[str]:
    return set(DeltaTable(PLAY_EVENTS.path(settings)).get_add_actions().column("path").to_pylist())


def test_maintain_compacts_zorders_vacuums_and_checkpoints(tmp_path: Path, today: date) -> None:
    settings = lake_settings(tmp_path, retention_hours=0)
    stream = Stream(settings)
    for i in range(30):
        stream.commit(today if i % 3 else today + timedelta(days=1))
    before = rows(settings)
    assert len(referenced_files(settings)) == 30

    report = maintain(settings, [BRONZE], now=later(today))

    (result,) = report.tables
    assert result.active_before.files == 30
    assert result.active_after.files == 2  # one per partition
    assert rows(settings).equals(before)
    # only the closed day is Z-ordered; the open one is compacted
    assert result.zordered_partitions == [f"event_date={today}"]
    history = DeltaTable(PLAY_EVENTS.path(settings)).history()
    zorders = [h for h in history if _strategy(h) == "zOrder"]
    assert len(zorders) == 1
    assert zorders[0]["encore.zOrderBy"] == "song_id,user_id"
    assert str(today) in zorders[0]["operationParameters"]["predicate"]
    # retention 0: every file the rewrite dropped is gone from storage
    assert data_files_on_disk(settings) == referenced_files(settings)
    assert result.vacuumed_files == 30
    assert result.stored_after.files == 2
    log = Path(PLAY_EVENTS.path(settings)) / "_delta_log"
    assert (log / f"{result.version_after:020d}.checkpoint.parquet").exists()
    assert result.checkpoint_version == result.version_after

    # the second run at the real clock: the Z-order's own files were written "today", which
    # the pretend clock above calls the open period of the closed day (for real, a Z-order
    # runs after the day closed, so its files are never due again: tested below)
    again = maintain(settings, [BRONZE]).tables[0]
    assert again.version_before == again.version_after == result.version_after
    assert not again.changed
    assert again.zordered_partitions == []
    assert (again.compacted_files_removed, again.compacted_files_added, again.vacuumed_files) == (
        0,
        0,
        0,
    )
    assert data_files_on_disk(settings) == referenced_files(settings)
    assert rows(settings).equals(before)


def test_the_stream_keeps_appending_through_maintenance(tmp_path: Path, today: date) -> None:
    """Rewrites commit beside the stream's appends: an append lands between maintenance's
    snapshot and its commit, and the stream's own snapshot predates the rewrite."""
    settings = lake_settings(tmp_path, retention_hours=168)
    stream = Stream(settings)
    for _ in range(12):
        stream.commit(today)

    def append_meanwhile(table: str, step: str) -> None:
        if step.startswith(("compacting", "z-ordering")):
            stream.commit(today)  # maintenance's table object was loaded before this

    noon = datetime.combine(today, time(12), tzinfo=UTC)  # today is open: compaction only
    compacted = maintain(settings, [BRONZE], append_meanwhile, now=noon).tables[0]
    stream.commit(today)
    zordered = maintain(settings, [BRONZE], append_meanwhile, now=later(today)).tables[0]
    stream.commit(today)

    assert compacted.compacted_files_removed == 12 and compacted.zordered_partitions == []
    assert zordered.zordered_partitions == [f"event_date={today}"]
    events = rows(settings).column("event_id").to_pylist()
    assert len(events) == len(set(events)) == 17 * 5
    assert committed_offsets(PLAY_EVENTS, settings, TOPIC, [0]) == {0: 17 * 5 - 1}
    # the default retention keeps rewritten files for readers of older versions
    assert compacted.vacuumed_files == zordered.vacuumed_files == 0
    assert data_files_on_disk(settings) > referenced_files(settings)
    old = DeltaTable(PLAY_EVENTS.path(settings), version=compacted.version_before)
    assert read_delta(old).num_rows == 12 * 5


def test_a_day_whose_files_were_all_written_after_it_closed_is_not_zordered_again(
    tmp_path: Path, today: date
) -> None:
    settings = lake_settings(tmp_path, retention_hours=0)
    stream = Stream(settings)
    for _ in range(3):
        stream.commit(today - timedelta(days=1))  # a late event, or a Z-order's output

    (result,) = maintain(settings, [BRONZE]).tables

    assert result.zordered_partitions == []
    assert (result.compacted_files_removed, result.compacted_files_added) == (3, 1)


def test_dry_run_changes_nothing(tmp_path: Path, today: date) -> None:
    settings = lake_settings(tmp_path, retention_hours=0)
    stream = Stream(settings)
    for _ in range(4):
        stream.commit(today)
    version = DeltaTable(PLAY_EVENTS.path(settings)).version()

    report = maintain(settings, [BRONZE], dry_run=True, now=later(today))
    (result,) = report.tables

    assert result.zordered_partitions == [f"event_date={today}"]
    assert result.active_before.files == 4 and result.active_after is None
    assert result.compacted_files_removed == 4
    assert "4 small" in report.rows()[0]
    assert DeltaTable(PLAY_EVENTS.path(settings)).version() == version
    assert len(data_files_on_disk(settings)) == 4


def test_every_registered_table_is_covered_and_absent_ones_are_reported(
    tmp_path: Path, today: date
) -> None:
    settings = lake_settings(tmp_path, retention_hours=0)
    Stream(settings).commit(today)

    report = maintain(settings)

    by_name = {t.table: t for t in report.tables}
    assert by_name[PLAY_EVENTS.qualified_name].exists
    assert not by_name[PLAY_EVENTS_REJECTED.qualified_name].exists
    with pytest.raises(NotFoundError, match=r"bronze\.nope"):
        maintain(settings, ["bronze.nope"])


def test_the_command_prints_a_row_per_table(tmp_path: Path, today: date, monkeypatch) -> None:
    from encore.cli import app

    monkeypatch.setenv("ENCORE_HOME", str(tmp_path))
    monkeypatch.setenv("ENCORE_LAKE__ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("COLUMNS", "200")  # one line per table
    get_settings.cache_clear()
    try:
        settings = get_settings()
        stream = Stream(settings)
        for _ in range(3):
            stream.commit(today)
        result = CliRunner().invoke(app, ["lake", "maintain", "--table", "bronze.play_events"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "bronze.play_events" in result.output
    assert "3 -> 1" in result.output
