"""Airflow: the batch platform's scheduler, three processes in its own environment.

``encore up airflow`` starts the scheduler (with the LocalExecutor, its task slots sized for
two cores), the DAG processor (parses ``dags/``) and the API server (UI and REST API), their
metadata in a database of the platform's PostgreSQL, migrated before the first start. Each
is a registered service of its own (``airflow-scheduler``, ``airflow-dag-processor``,
``airflow``); ``airflow`` needs the other two, so naming it starts all three.

Every Airflow process (these, and ``airflow dags test`` in tests and the demo) gets its
configuration from :func:`airflow_env`: ``AIRFLOW__*`` variables derived from Encore's
settings, plus the ``ENCORE_*`` variables of those settings, so a task's ``encore`` command
sees exactly the settings of the platform that scheduled it. Beyond one machine the same
variables point at a Celery or Kubernetes executor and a managed database (docs/airflow.md).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from encore import supervisor
from encore.errors import ConfigurationError, ServiceError
from encore.services.base import Service, data_dir
from encore.settings import REPO_ROOT, Settings, settings_env

DEFAULT_JWT_SECRET = "dev-airflow-jwt-secret-change-me-32-bytes"
DAGS_FOLDER = REPO_ROOT / "dags"


def airflow_home(settings: Settings) -> Path:
    return data_dir(settings, "airflow")


def metadata_url(settings: Settings) -> str:
    """SQLAlchemy URL of Airflow's metadata database (psycopg2, Airflow's tested driver)."""
    configured = settings.airflow.sql_alchemy_conn.get_secret_value()
    if configured:
        return configured
    base = settings.postgres.effective_dsn.rsplit("/", 1)[0]
    base = base.replace("postgresql://", "postgresql+psycopg2://", 1)
    return f"{base}/{settings.airflow.database}"


def api_url(settings: Settings) -> str:
    return f"http://{settings.airflow.host}:{settings.airflow.port}"


def scheduler_health_port(settings: Settings) -> int:
    """The scheduler's health-check server listens beside the API server's port."""
    return settings.airflow.port + 1


def log_server_port(settings: Settings) -> int:
    """The scheduler's task-log server (for the UI of workers on other hosts) listens two
    above the API server's port: Airflow's fixed default, 8793, would let a second platform
    on the machine (tests, another home) take it and keep that scheduler from starting."""
    return settings.airflow.port + 2


def secret_problems(settings: Settings) -> list[str]:
    """Default secrets refused outside development (empty when all is well)."""
    if settings.development:
        return []
    if settings.airflow.jwt_secret.get_secret_value() == DEFAULT_JWT_SECRET:
        return [
            "ENCORE_AIRFLOW__JWT_SECRET: the built-in default is in use; set a secret of at "
            "least 32 bytes (it signs the tokens between Airflow's components)"
        ]
    return []


def airflow_env(settings: Settings) -> dict[str, str]:
    """The environment every Airflow process of this platform runs with."""
    home = airflow_home(settings)
    development = settings.development and not settings.airflow.admin_password.get_secret_value()
    env = {
        **settings_env(settings),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__EXECUTOR": settings.airflow.executor,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(settings.airflow.parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(settings.airflow.max_active_tasks_per_dag),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": str(settings.airflow.dag_file_timeout_s),
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": str(
            settings.airflow.dag_file_timeout_s + 20
        ),
        # one parsing process: two cores are shared with the platform and the tasks
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url(settings),
        "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
        "AIRFLOW__API__HOST": settings.airflow.host,
        "AIRFLOW__API__PORT": str(settings.airflow.port),
        "AIRFLOW__API__BASE_URL": api_url(settings),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url(settings)}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": settings.airflow.jwt_secret.get_secret_value(),
        "AIRFLOW__API__SECRET_KEY": settings.airflow.jwt_secret.get_secret_value(),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(
            scheduler_health_port(settings)
        ),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_server_port(settings)),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.home / "logs" / "airflow"),
        "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": str(development),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        # tasks are `encore` commands in the core environment: never Airflow's own Python
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return env


def airflow_command(settings: Settings, *args: str) -> list[str]:
    return [str(settings.airflow_bin / "airflow"), *args]


def run_airflow(
    settings: Settings, *args: str, timeout_s: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run one ``airflow`` CLI command with this platform's environment; output captured."""
    result = subprocess.run(
        airflow_command(settings, *args),
        env={**os.environ, **airflow_env(settings)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=airflow_home(settings),
    )
    if check and result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ServiceError("airflow", f"`airflow {' '.join(args)}` failed: " + " | ".join(tail))
    return result


def prepare(settings: Settings) -> None:
    """Create the metadata database when it is Encore's own, migrate it, write the UI's
    password file; idempotent (a migrated database is a no-op migration)."""
    problems = secret_problems(settings)
    if problems:
        raise ConfigurationError("; ".join(problems))
    if not (settings.airflow_bin / "airflow").exists():
        raise ConfigurationError(
            f"no Airflow environment at {settings.airflow_bin.parent}; run `make setup`"
        )
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    (settings.home / "logs" / "airflow").mkdir(parents=True, exist_ok=True)
    password = settings.airflow.admin_password.get_secret_value()
    passwords = home / "passwords.json"
    if password:
        passwords.write_text(json.dumps({"admin": password}))
        passwords.chmod(0o600)
    if not settings.airflow.sql_alchemy_conn.get_secret_value() and not settings.postgres.dsn:
        _create_database(settings)
    run_airflow(settings, "db", "migrate")


def _create_database(settings: Settings) -> None:
    import psycopg

    admin = settings.postgres.effective_dsn.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        name = settings.airflow.database
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _api_healthy(settings: Settings) -> bool:
    """The API server answers and reports the metadata database, the scheduler and the DAG
    processor healthy (Airflow's own monitor endpoint, from their heartbeats)."""
    import httpx

    try:
        response = httpx.get(f"{api_url(settings)}/api/v2/monitor/health", timeout=3)
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    body = response.json()
    wanted = ("metadatabase", "scheduler", "dag_processor")
    return all(body.get(part, {}).get("status") == "healthy" for part in wanted)


def _scheduler_healthy(settings: Settings) -> bool:
    import httpx

    try:
        url = f"http://127.0.0.1:{scheduler_health_port(settings)}/health"
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _dag_processor_healthy(settings: Settings) -> bool:
    # no health endpoint of its own; its heartbeat is checked by the API server's monitor
    return supervisor.running_pid(settings.home, "airflow-dag-processor") is not None


def _component(name: str, *args: str):
    def command(settings: Settings) -> list[str]:
        return airflow_command(settings, *args)

    return command


SCHEDULER = Service(
    "airflow-scheduler",
    address=lambda s: f"http://127.0.0.1:{scheduler_health_port(s)}/health",
    command=_component("airflow-scheduler", "scheduler"),
    healthy=_scheduler_healthy,
    prepare=prepare,
    env=airflow_env,
    ports=lambda s: {
        "ENCORE_AIRFLOW__PORT (+1)": scheduler_health_port(s),
        "ENCORE_AIRFLOW__PORT (+2)": log_server_port(s),
    },
    needs=("postgres",),
    start_timeout_s=240,
)

DAG_PROCESSOR = Service(
    "airflow-dag-processor",
    address=lambda s: str(DAGS_FOLDER),
    command=_component("airflow-dag-processor", "dag-processor"),
    healthy=_dag_processor_healthy,
    env=airflow_env,
    needs=("airflow-scheduler",),
    start_timeout_s=60,
)

API_SERVER = Service(
    "airflow",
    address=api_url,
    command=_component("airflow", "api-server"),
    healthy=_api_healthy,
    env=airflow_env,
    ports=lambda s: {"ENCORE_AIRFLOW__PORT": s.airflow.port},
    needs=("airflow-scheduler", "airflow-dag-processor"),
    start_timeout_s=240,
)
