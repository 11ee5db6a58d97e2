"""Running Encore's DAGs from Encore: one DAG run by hand, and what Airflow recorded of it.

The DAGs live in ``dags/`` and run in Airflow's own environment; this module drives them
from the core environment through Airflow's CLI (``airflow dags test``: every task in
order in one process, no scheduler needed) with the platform's Airflow environment
(:func:`encore.services.airflow.airflow_env`), and reads task states back from Airflow's
metadata database. Used by ``encore airflow run``, the demo and the DAG tests.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import date, timedelta

from encore.services import airflow
from encore.settings import Settings


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    """The run's final state: ``success`` or ``failed`` (``missing`` if no run was made)."""
    tasks: dict[str, str | None]
    """Every task's final state (``success``, ``failed``, ``upstream_failed``, ``skipped``...)."""
    output: str
    """Everything ``airflow dags test`` printed: the tasks' logs, the commands' output."""

    @property
    def succeeded(self) -> bool:
        return self.state == "success"

    def explain(self) -> str:
        """For error and assertion messages: the states and the end of the log."""
        return f"{self.dag_id} {self.state} {self.tasks}\n...\n{self.output[-6000:]}"


def logical_date_for(day: date) -> str:
    """The logical date whose daily run processes ``day``: a run covers the interval that
    ended at its logical date, so ``day`` + 1."""
    return (day + timedelta(days=1)).isoformat()


def run_dag(
    settings: Settings,
    dag_id: str,
    logical_date: str,
    *,
    env: dict[str, str] | None = None,
    retries: bool = False,
    timeout_s: float = 3600,
) -> DagRunResult:
    """Run ``dag_id`` once for ``logical_date`` (``YYYY-MM-DD``) with ``airflow dags test``.

    A daily DAG's run at ``logical_date`` D processes the interval that ended then: the day
    D - 1 (:func:`logical_date_for`). Retries are off unless asked (a failure shows at once).
    The metadata database must be migrated (``airflow.prepare``).
    """
    child_env = {
        **os.environ,
        **airflow.airflow_env(settings),
        **({} if retries else {"ENCORE_DAG_RETRIES": "0"}),
        **(env or {}),
    }
    result = subprocess.run(
        airflow.airflow_command(settings, "dags", "test", dag_id, logical_date),
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=airflow.airflow_home(settings),
    )
    run_id, state, tasks = last_run(settings, dag_id)
    return DagRunResult(dag_id, run_id, state, tasks, result.stdout + result.stderr)


def last_run(settings: Settings, dag_id: str) -> tuple[str, str, dict[str, str | None]]:
    """The newest run of ``dag_id`` and its task states, from Airflow's metadata database."""
    import psycopg

    with psycopg.connect(_metadata_dsn(settings)) as conn:
        row = conn.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = %s ORDER BY id DESC LIMIT 1",
            (dag_id,),
        ).fetchone()
        if row is None:
            return "", "missing", {}
        tasks = conn.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = %s AND run_id = %s",
            (dag_id, row[0]),
        ).fetchall()
    return row[0], row[1], dict(tasks)


def runs(settings: Settings, dag_id: str) -> list[dict]:
    """Every run of ``dag_id``, oldest logical date first: run id, type, state, interval,
    start and end (what a backfill's order and outcome are checked against)."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(_metadata_dsn(settings), row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT run_id, run_type, state, logical_date, data_interval_start, "
            "data_interval_end, start_date, end_date FROM dag_run WHERE dag_id = %s "
            "ORDER BY logical_date, id",
            (dag_id,),
        ).fetchall()


def _metadata_dsn(settings: Settings) -> str:
    url = airflow.metadata_url(settings)
    driver, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and driver.startswith("postgresql") else url


DAY_OF_DAGS = ("lake_daily", "features_daily", "train_recommenders", "lake_maintenance")
"""The daily platform in the order a day's data flows (the schedule chains them by assets);
``privacy_requests`` runs hourly on its own."""
