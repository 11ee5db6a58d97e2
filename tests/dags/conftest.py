"""Running Encore's DAGs in tests: real Airflow (its own environment), real services.

``airflow_settings`` is the test platform's settings with an Airflow metadata database of
its own on the platform's PostgreSQL, created and migrated once per test session by the
same ``prepare`` that ``encore up airflow`` runs. :func:`run_dag` runs one DAG run with
``airflow dags test`` (every task in order, in one process, no scheduler) and reads the
task states back from Airflow's metadata database. Tasks are ``encore`` commands: they get
the ``ENCORE_*`` variables of the settings passed in (a test's own lake, say).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from encore.services import airflow
from encore.settings import Settings
from tests.conftest import free_port


@pytest.fixture(scope="session")
def airflow_settings(platform: Settings) -> Iterator[Settings]:
    """The platform's settings with a migrated Airflow metadata database of the tests' own."""
    settings = platform.model_copy(
        update={
            "airflow": platform.airflow.model_copy(
                update={"database": "airflow_tests", "port": free_port()}
            )
        }
    )
    airflow.prepare(settings)
    yield settings


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    """The run's final state: ``success`` or ``failed``."""
    tasks: dict[str, str | None]
    """Every task's final state (``success``, ``failed``, ``upstream_failed``, ``skipped``...)."""
    output: str
    """Everything ``airflow dags test`` printed: the tasks' logs, the commands' output."""

    def explain(self) -> str:
        """For assertion messages: the states and the end of the log."""
        return f"{self.dag_id} {self.state} {self.tasks}\n...\n{self.output[-6000:]}"


def run_dag(
    settings: Settings,
    dag_id: str,
    logical_date: str,
    *,
    env: dict[str, str] | None = None,
    timeout_s: float = 1200,
) -> DagRunResult:
    """Run ``dag_id`` once for ``logical_date`` (``YYYY-MM-DD``) with ``airflow dags test``.

    A daily DAG's run at ``logical_date`` D processes the data interval that ended then: the
    day D - 1 (``airflow dags test`` infers the interval as the scheduler would). Retries
    are off (``ENCORE_DAG_RETRIES=0``) so a failure shows at once.
    """
    child_env = {
        **os.environ,
        **airflow.airflow_env(settings),
        "ENCORE_DAG_RETRIES": "0",
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
    output = result.stdout + result.stderr
    run_id, state, tasks = _last_run(settings, dag_id)
    return DagRunResult(dag_id, run_id, state, tasks, output)


def _last_run(settings: Settings, dag_id: str) -> tuple[str, str, dict[str, str | None]]:
    """The newest run of ``dag_id`` and its task states, from Airflow's metadata database."""
    import psycopg

    dsn = airflow.metadata_url(settings).replace("postgresql+psycopg2://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
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
