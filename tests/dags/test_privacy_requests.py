"""privacy_requests end to end (see dags/privacy_requests.py): a queued erasure is done by
the DAG's run against a small lake, and a second run with nothing open changes nothing.
(That the run fails on a late request is the command's exit status, tested with the command
in tests/pipelines/lake/test_privacy_queue.py: a third Airflow run would cost ~40 s.)"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable

from encore.settings import Settings
from encore.tables import ERASURES, PLAY_EVENTS
from pipelines.lake import privacy_queue as pq
from tests.conftest import fresh_database
from tests.dags.conftest import run_dag
from tests.pipelines.lake.conftest import read_rows, write_rows
from tests.pipelines.lake.test_silver import event

pytestmark = pytest.mark.integration

ALICE, CAROL = "listener-alice-dag", "listener-carol-dag"
PLAYED = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)


@pytest.fixture()
def settings(airflow_settings: Settings, tmp_path: Path) -> Settings:
    """Airflow's test settings with a queue database and a lake of this test's own."""
    settings = fresh_database(airflow_settings, "privacy_dag_tests")
    lake = settings.lake.model_copy(update={"root": str(tmp_path / "lake")})
    return settings.model_copy(update={"lake": lake})


def test_a_queued_erasure_is_done_by_the_dag_and_a_rerun_changes_nothing(
    settings: Settings,
) -> None:
    write_rows(
        settings,
        PLAY_EVENTS,
        [
            event("e-a1", ALICE, "s-1", PLAYED, 40_000),
            event("e-a2", ALICE, "s-2", PLAYED, 40_000),
            event("e-c1", CAROL, "s-1", PLAYED, 40_000),
        ],
    )
    engine = pq.connect(settings)
    try:
        erase, _ = pq.queue_request(settings, engine, "erase", ALICE)

        first = run_dag(settings, "privacy_requests", "2026-11-30T00:17:00+00:00")

        assert first.state == "success", first.explain()
        assert first.tasks == {"process": "success"}, first.explain()
        assert f"{erase.request_id} erase done" in first.output, first.explain()
        assert ALICE not in first.output
        assert [r["user_id"] for r in read_rows(settings, PLAY_EVENTS)] == [CAROL]
        done = pq.get_request(engine, erase.request_id)
        assert done.status == "done" and done.attempts == 1 and done.user_id is None
        bronze_version = DeltaTable(PLAY_EVENTS.path(settings)).version()

        second = run_dag(settings, "privacy_requests", "2026-11-30T01:17:00+00:00")

        assert second.state == "success", second.explain()
        assert "0 processed, 0 failed, 0 late" in second.output, second.explain()
        assert pq.get_request(engine, erase.request_id) == done
        assert DeltaTable(PLAY_EVENTS.path(settings)).version() == bronze_version
        assert [r["request_id"] for r in read_rows(settings, ERASURES)] == [erase.request_id]
    finally:
        engine.dispose()
