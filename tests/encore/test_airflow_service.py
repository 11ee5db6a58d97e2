"""Airflow as a running service: ``encore up airflow`` starts the scheduler, the DAG processor
and the API server on a platform of the test's own (PostgreSQL only, free ports, a temporary
ENCORE_HOME), the API reports all of them healthy and lists the DAGs parsed from ``dags/``,
``encore urls`` prints the UI's address and ``encore down`` leaves no process behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from encore import services, supervisor
from encore.errors import ConfigurationError
from encore.services import airflow
from encore.services.base import port_in_use
from encore.settings import Settings
from tests.conftest import free_port, make_platform_home, platform_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENCORE = str(Path(sys.executable).parent / "encore")
COMPONENTS = ["airflow-scheduler", "airflow-dag-processor", "airflow"]
EXPECTED_DAGS = {
    "lake_daily",
    "lake_maintenance",
    "features_daily",
    "train_recommenders",
    "privacy_requests",
}


@dataclass(frozen=True)
class AirflowPlatform:
    settings: Settings
    env: dict[str, str]
    """The environment of the ``encore`` commands run against it."""
    up: subprocess.CompletedProcess[str]
    """What ``encore up airflow`` printed."""


def encore(platform: AirflowPlatform, *args: str, timeout: float = 300):
    return subprocess.run(
        [ENCORE, *args],
        capture_output=True,
        text=True,
        env=platform.env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def airflow_platform() -> Iterator[AirflowPlatform]:
    """``encore up airflow`` on a home of its own: PostgreSQL (a prerequisite) and Airflow's
    three processes; ``encore down`` afterwards whatever the tests did."""
    home = make_platform_home("encore-airflow-")
    env = {**os.environ, **platform_env(home), "ENCORE_AIRFLOW__PORT": str(free_port())}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            if name.startswith("ENCORE_"):
                patch.setenv(name, value)
        settings = Settings()
    platform = AirflowPlatform(settings, env, subprocess.CompletedProcess([], 0, "", ""))
    try:
        up = encore(platform, "up", "airflow")
        yield AirflowPlatform(settings, env, up)
    finally:
        encore(platform, "down")
        shutil.rmtree(home, ignore_errors=True)


def test_encore_up_airflow_starts_three_healthy_processes(airflow_platform):
    up = airflow_platform.up
    assert up.returncode == 0, up.stdout + up.stderr
    rows = services.status(airflow_platform.settings, COMPONENTS)
    assert [(row.name, row.healthy, bool(row.pid)) for row in rows] == [
        (name, True, True) for name in COMPONENTS
    ]
    assert len({row.pid for row in rows}) == 3
    # the scheduler's log server on a port of this platform's, not Airflow's fixed 8793
    assert port_in_use(airflow.log_server_port(airflow_platform.settings))


def test_the_api_reports_scheduler_dag_processor_and_database_healthy(airflow_platform):
    response = httpx.get(f"{airflow.api_url(airflow_platform.settings)}/api/v2/monitor/health")
    assert response.status_code == 200
    states = {part: value["status"] for part, value in response.json().items()}
    assert states["metadatabase"] == states["scheduler"] == states["dag_processor"] == "healthy"


def test_the_dag_processor_has_parsed_every_dag_file(airflow_platform):
    """The REST API lists a DAG for every file in dags/ (a DAG's id is its file's name); in
    development every visitor is admin, so no token is needed."""
    expected = dag_files_ids()
    assert expected >= EXPECTED_DAGS
    url = f"{airflow.api_url(airflow_platform.settings)}/api/v2/dags"
    listed: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = httpx.get(url, params={"limit": 100}, timeout=10)
        assert response.status_code == 200, response.text
        listed = {dag["dag_id"] for dag in response.json()["dags"]}
        if listed >= expected:
            break
        time.sleep(1)
    errors = httpx.get(
        f"{airflow.api_url(airflow_platform.settings)}/api/v2/importErrors", timeout=10
    ).json()
    assert listed == expected, errors
    assert errors["total_entries"] == 0, errors


def test_encore_urls_prints_the_ui_address(airflow_platform):
    result = encore(airflow_platform, "urls", timeout=60)
    assert result.returncode == 0, result.stderr
    assert airflow.api_url(airflow_platform.settings) in result.stdout


def test_encore_down_stops_all_three(airflow_platform):
    settings = airflow_platform.settings
    pids = {name: services.running_pid(settings, name) for name in COMPONENTS}
    assert all(pids.values()), pids
    result = encore(airflow_platform, "down")
    assert result.returncode == 0, result.stderr
    for name in COMPONENTS:
        assert f"stopped {name}" in result.stderr
        assert supervisor.start_ticks(pids[name]) is None, f"{name} (pid {pids[name]}) still runs"
    assert services.our_processes(settings) == []
    assert not [line for line in _cmdlines() if str(settings.home) in line]


def test_outside_development_the_default_jwt_secret_is_refused(tmp_path):
    settings = Settings(home=tmp_path, development=False)
    with pytest.raises(ConfigurationError, match="ENCORE_AIRFLOW__JWT_SECRET"):
        airflow.prepare(settings)
    assert not (tmp_path / "data" / "airflow").exists()  # refused before anything was made
    chosen = settings.model_copy(
        update={"airflow": settings.airflow.model_copy(update={"jwt_secret": SecretStr("s" * 40)})}
    )
    assert airflow.secret_problems(chosen) == []


def dag_files_ids() -> set[str]:
    """The DAG ids dags/ should hold: one per Python file not in .airflowignore."""
    folder = airflow.DAGS_FOLDER
    ignored = {
        line.strip().replace("\\", "")
        for line in (folder / ".airflowignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    return {path.stem for path in folder.glob("*.py") if path.name not in ignored}


def _cmdlines() -> Iterator[str]:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                yield Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
