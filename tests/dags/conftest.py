"""Running Encore's DAGs in tests: real Airflow (its own environment), real services.

``airflow_settings`` is the test platform's settings with an Airflow metadata database of
its own on the platform's PostgreSQL, created and migrated once per test session by the
same ``prepare`` that ``encore up airflow`` runs. ``run_dag`` (``encore.scheduling``) runs
one DAG run with ``airflow dags test`` (every task in order, in one process, no scheduler)
and reads the task states back from Airflow's metadata database. Tasks are ``encore``
commands: they get the ``ENCORE_*`` variables of the settings passed in (a test's own lake).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from encore.scheduling import DagRunResult, run_dag
from encore.services import airflow
from encore.settings import Settings
from tests.conftest import free_port

__all__ = ["DagRunResult", "airflow_settings", "run_dag"]


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
