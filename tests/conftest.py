"""Shared fixtures.

``platform`` brings the real local platform (Kafka, Redis, PostgreSQL, MLflow) up once per
test session in a temporary ENCORE_HOME on free ports, and down afterwards. Tests that use it
are marked ``integration``. Settings reach every process (this one, Flink jobs, API servers
in subprocesses) through ``ENCORE_*`` environment variables, exactly as in production.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from encore import services
from encore.db import migrate
from encore.settings import Settings, get_settings, settings_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def platform_env(home: Path) -> dict[str, str]:
    """ENCORE_* variables for an isolated platform under ``home`` on free ports."""
    return {
        "ENCORE_HOME": str(home),
        "ENCORE_DEVELOPMENT": "true",
        "ENCORE_KAFKA__PORT": str(free_port()),
        "ENCORE_KAFKA__CONTROLLER_PORT": str(free_port()),
        "ENCORE_REDIS__PORT": str(free_port()),
        "ENCORE_POSTGRES__PORT": str(free_port()),
        "ENCORE_MLFLOW__PORT": str(free_port()),
        "ENCORE_API__PORT": str(free_port()),
        "ENCORE_SERVING__PORT": str(free_port()),
        # tests run beside other work on 2 cores: keep the engines small
        "ENCORE_SPARK__MASTER": "local[1]",
        "ENCORE_SPARK__SHUFFLE_PARTITIONS": "1",
        "ENCORE_FLINK__PARALLELISM": "1",
    }


def make_platform_home(prefix: str = "encore-test-") -> Path:
    """A fresh ENCORE_HOME outside pytest's private temp root.

    PostgreSQL runs as the `postgres` user when we are root, so it must reach its data dir;
    pytest keeps `/tmp/pytest-of-<user>` at mode 0700 and resets it whenever another pytest
    starts, which would pull the ground from under a running server.
    """
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)
    return home


@pytest.fixture(scope="session")
def platform_home() -> Iterator[Path]:
    home = make_platform_home()
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def platform(platform_home: Path) -> Iterator[Settings]:
    """The real local platform, up for the whole session; yields its settings."""
    saved = dict(os.environ)
    os.environ.update(platform_env(platform_home))
    get_settings.cache_clear()
    settings = get_settings()
    try:
        services.up(settings)
        migrate.upgrade(settings)
        yield settings
    finally:
        services.down(settings)
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


@pytest.fixture()
def platform_settings_env(platform: Settings) -> dict[str, str]:
    """The ENCORE_* variables of the running platform, for subprocesses."""
    return settings_env(platform)


def fresh_database(platform: Settings, name: str, revision: str | None = "head") -> Settings:
    """Settings on a new database ``name`` on the platform's PostgreSQL (dropped first if a
    previous run left it), migrated to ``revision`` (``None``: left empty): for tests whose
    rows must not meet other tests'."""
    import psycopg

    with psycopg.connect(platform.postgres.effective_dsn, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    settings = platform.model_copy(
        update={"postgres": platform.postgres.model_copy(update={"database": name})}
    )
    if revision:
        migrate.upgrade(settings, revision)
    return settings


@pytest.fixture(scope="session")
def analytics_world(platform: Settings, tmp_path_factory: pytest.TempPathFactory):
    """A week of a small platform built by the real jobs (tests/analytics_world.py): the
    dashboard's and the notebooks' data, built once per test process."""
    from tests.analytics_world import analytics_world as build

    return build(platform, tmp_path_factory.mktemp("analytics-world"))
