"""lake_maintenance end to end (dags/lake_maintenance.py): ``airflow dags test`` on a lake
whose bronze the stream wrote in small commits: the files are compacted, the rows kept."""

from __future__ import annotations

from datetime import date

import pytest
from deltalake import DeltaTable

from encore.delta import read_lake_table
from encore.tables import PLAY_EVENTS
from tests.dags.conftest import run_dag
from tests.dags.lake_world import build_lake_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = date(2026, 11, 29)


def test_the_weekly_run_compacts_the_lake_and_keeps_its_rows(airflow_settings, tmp_path):
    world = build_lake_world(airflow_settings, tmp_path / "lake", [D], database="lake_upkeep")
    path = PLAY_EVENTS.path(world.settings)
    files_before, version_before = len(DeltaTable(path).file_uris()), DeltaTable(path).version()
    rows_before = read_lake_table(world.settings, PLAY_EVENTS).sort_by("event_id")
    assert files_before > 1, "the world wrote bronze in one file: nothing to compact"

    result = run_dag(world.settings, "lake_maintenance", "2026-12-06")  # a Sunday

    assert result.state == "success", result.explain()
    assert result.tasks == {"maintain": "success"}, result.explain()
    after = DeltaTable(path)
    assert len(after.file_uris()) < files_before
    assert after.version() > version_before
    assert read_lake_table(world.settings, PLAY_EVENTS).sort_by("event_id") == rows_before
