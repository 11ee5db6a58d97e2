"""A week of history backfilled through Airflow equals a direct build of the same week.

A lake world of seven days of simulated bronze (tests/dags/lake_world.py) is copied, before
anything is built, into a second lake root. On the first, ``encore up airflow`` runs the
real scheduler, DAG processor and API server (LocalExecutor) and ``airflow backfill create``
backfills ``lake_daily`` over the week, one run at a time; on the copy, ``encore lake build
--from D1 --to D7`` (its dims, silver and gold stages) builds the same week directly. Both
read the same catalog database, so every gold table must hold the same rows.

The scheduler is told not to make scheduled runs of its own
(``AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False``): unpausing a ``catchup=False`` DAG would
otherwise start the latest interval's run beside the backfill, on the same lake.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from encore import scheduling, services
from encore.delta import read_lake_table
from encore.services import airflow
from encore.settings import Settings, settings_env
from encore.tables import TRENDING_SONGS, Table, tables_in
from tests.conftest import free_port
from tests.dags.lake_world import build_lake_world

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow, pytest.mark.backfill]

DAYS = [date(2026, 11, 20) + timedelta(days=n) for n in range(7)]
COMPONENTS = ["airflow-scheduler", "airflow-dag-processor", "airflow"]
ENCORE = str(Path(sys.executable).parent / "encore")
BACKFILL_TIMEOUT_S = 3600
GOLD_BUILT_BY_THE_DAILY_JOBS = [t for t in tables_in("gold") if t != TRENDING_SONGS]
"""Every gold table but the stream's (trending songs are written by the Flink job)."""


@pytest.mark.timeout(BACKFILL_TIMEOUT_S + 1800)
def test_a_week_backfilled_through_airflow_equals_a_direct_build(platform, tmp_path, monkeypatch):
    world = build_lake_world(platform, tmp_path / "scheduled", DAYS, database="backfill_world")
    shutil.copytree(tmp_path / "scheduled", tmp_path / "direct")  # bronze only, nothing built
    direct = world.settings.model_copy(
        update={"lake": world.settings.lake.model_copy(update={"root": str(tmp_path / "direct")})}
    )
    scheduled = world.settings.model_copy(
        update={
            "airflow": world.settings.airflow.model_copy(
                update={"database": "airflow_backfill", "port": free_port()}
            )
        }
    )
    drop_database(platform, "airflow_backfill")  # no runs left by an earlier session
    monkeypatch.setenv("ENCORE_DAG_RETRIES", "0")  # a failure shows at once
    monkeypatch.setenv("AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "False")

    first, last = DAYS[0].isoformat(), DAYS[-1].isoformat()
    try:
        services.up(scheduled, ["airflow"])
        wait_until_parsed(scheduled, "lake_daily")
        airflow.run_airflow(scheduled, "dags", "unpause", "lake_daily")
        airflow.run_airflow(
            scheduled,
            "backfill",
            "create",
            "--dag-id",
            "lake_daily",
            "--from-date",
            first,
            "--to-date",
            last,
            "--max-active-runs",
            "1",
        )
        runs = wait_for_runs(scheduled, "lake_daily", len(DAYS))
        tasks = task_states(scheduled, "lake_daily")
        first_commands = rendered_commands(scheduled, "lake_daily", runs[0]["run_id"])
    finally:
        services.down(scheduled, COMPONENTS)

    # one backfill run per day, the run for day D covering D (its data interval's start)
    assert [run["run_type"] for run in runs] == ["backfill"] * len(DAYS)
    assert [run["data_interval_start"].date() for run in runs] == DAYS
    assert all(first in command for command in first_commands.values()), first_commands
    # all succeeded, every task of every run
    assert [run["state"] for run in runs] == ["success"] * len(DAYS), tasks
    assert {state for run_tasks in tasks.values() for state in run_tasks.values()} == {"success"}
    # in date order, one at a time: each run started after the previous day's run ended
    for earlier, later in itertools.pairwise(runs):
        assert earlier["end_date"] <= later["start_date"], (earlier, later)

    # the stages gold depends on (the features and training stages would only add time)
    stages = ["--stage", "dims", "--stage", "silver", "--stage", "gold"]
    build = subprocess.run(
        [ENCORE, "lake", "build", "--from", first, "--to", last, *stages],
        capture_output=True,
        text=True,
        env={**os.environ, **settings_env(direct)},
        timeout=1800,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-4000:]

    for table in GOLD_BUILT_BY_THE_DAILY_JOBS:
        backfilled = sorted_rows(scheduled, table)
        built = sorted_rows(direct, table)
        assert backfilled, f"{table.qualified_name}: no rows after the backfill"
        assert backfilled == built, table.qualified_name


def drop_database(platform: Settings, name: str) -> None:
    with psycopg.connect(platform.postgres.effective_dsn, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_until_parsed(settings: Settings, dag_id: str, timeout_s: float = 120) -> None:
    """Until the DAG processor has stored ``dag_id`` (the backfill reads the stored DAG)."""
    url = f"{airflow.api_url(settings)}/api/v2/dags/{dag_id}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(url, timeout=10).status_code == 200:
            return
        time.sleep(1)
    errors = httpx.get(f"{airflow.api_url(settings)}/api/v2/importErrors", timeout=10).text
    raise AssertionError(f"{dag_id} not parsed within {timeout_s} s; import errors: {errors}")


def wait_for_runs(settings: Settings, dag_id: str, count: int) -> list[dict]:
    """Every run of ``dag_id`` once ``count`` of them have finished, or one failed."""
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = scheduling.runs(settings, dag_id)
        finished = [run for run in runs if run["state"] in ("success", "failed")]
        if len(finished) >= count or any(run["state"] == "failed" for run in runs):
            return runs
        time.sleep(5)
    raise AssertionError(f"{dag_id}: not {count} finished runs in {BACKFILL_TIMEOUT_S} s: {runs}")


def task_states(settings: Settings, dag_id: str) -> dict[str, dict[str, str | None]]:
    """{run id: {task id: state}} of every run of ``dag_id``."""
    states: dict[str, dict[str, str | None]] = {}
    with psycopg.connect(metadata_dsn(settings)) as connection:
        for run_id, task_id, state in connection.execute(
            "SELECT run_id, task_id, state FROM task_instance WHERE dag_id = %s", (dag_id,)
        ):
            states.setdefault(run_id, {})[task_id] = state
    return states


def rendered_commands(settings: Settings, dag_id: str, run_id: str) -> dict[str, str]:
    """{task id: the shell command it ran}, as Airflow rendered it for run ``run_id``."""
    with psycopg.connect(metadata_dsn(settings)) as connection:
        rows = connection.execute(
            "SELECT task_id, rendered_fields FROM rendered_task_instance_fields "
            "WHERE dag_id = %s AND run_id = %s",
            (dag_id, run_id),
        ).fetchall()
    return {task_id: fields.get("bash_command", "") for task_id, fields in rows}


def metadata_dsn(settings: Settings) -> str:
    return airflow.metadata_url(settings).replace("postgresql+psycopg2://", "postgresql://", 1)


def sorted_rows(settings: Settings, table: Table) -> list[dict]:
    rows = read_lake_table(settings, table).to_pylist()
    return sorted(rows, key=lambda row: [(value is None, str(value)) for value in row.values()])
