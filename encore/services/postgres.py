"""PostgreSQL: a cluster in ``data/postgres``, run as the ``postgres`` user when we are root."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from encore.errors import ConfigurationError, ServiceError
from encore.services.base import Service, data_dir
from encore.settings import Settings

# PostgreSQL refuses to run as root; when we are root we run it as this system user.
POSTGRES_OS_USER = "postgres"


def _pg_binary(name: str) -> str:
    for candidate in (
        shutil.which(name),
        *sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")),
    ):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise ConfigurationError(
        f"PostgreSQL's {name} not found; `make setup` installs it with "
        "apt-get (Debian package postgresql)"
    )


def _pg_run_as() -> str | None:
    return POSTGRES_OS_USER if os.geteuid() == 0 else None


def _chown_for_postgres(path: Path) -> None:
    user = _pg_run_as()
    if user:
        shutil.chown(path, user, user)


def _postgres_prepare(settings: Settings) -> None:
    root = data_dir(settings, "postgres")
    pgdata, sockets = root / "pgdata", root / "sockets"
    for path in (root, sockets):
        path.mkdir(parents=True, exist_ok=True)
        _chown_for_postgres(path)
    if (pgdata / "PG_VERSION").exists():
        return
    result = subprocess.run(
        [
            _pg_binary("initdb"),
            "-D",
            str(pgdata),
            "-U",
            settings.postgres.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        ],
        capture_output=True,
        text=True,
        user=_pg_run_as(),
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError("postgres", f"initdb failed: {result.stderr.strip()}")


def _postgres_command(settings: Settings) -> list[str]:
    root = data_dir(settings, "postgres")
    return [
        _pg_binary("postgres"),
        "-D",
        str(root / "pgdata"),
        "-p",
        str(settings.postgres.port),
        "-k",
        str(root / "sockets"),
        "-c",
        "listen_addresses=localhost",
        "-c",
        "max_connections=200",
        "-c",
        "shared_buffers=128MB",
        "-c",
        "fsync=on",
    ]


def _postgres_healthy(settings: Settings) -> bool:
    import psycopg

    # the embedded server is healthy once it answers; its databases come in after_start
    dsn = settings.postgres.dsn or _postgres_admin_dsn(settings)
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _postgres_admin_dsn(settings: Settings) -> str:
    return settings.postgres.effective_dsn.rsplit("/", 1)[0] + "/postgres"


def _postgres_after_start(settings: Settings) -> None:
    """Create the MLflow database beside the application one (idempotent)."""
    import psycopg

    if settings.postgres.dsn:
        return  # a managed server: its databases are provisioned by its owners
    with psycopg.connect(_postgres_admin_dsn(settings), autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in (settings.postgres.database, settings.postgres.mlflow_database):
            if name not in existing:
                conn.execute(f'CREATE DATABASE "{name}"')


SERVICE = Service(
    "postgres",
    address=lambda s: s.postgres.effective_dsn,
    command=_postgres_command,
    healthy=_postgres_healthy,
    prepare=_postgres_prepare,
    after_start=_postgres_after_start,
    run_as=_pg_run_as,
    external=lambda s: bool(s.postgres.dsn),
    ports=lambda s: {"ENCORE_POSTGRES__PORT": s.postgres.port},
    # SIGINT is PostgreSQL's "fast shutdown"
    stop_signal=signal.SIGINT,
    core=True,
)
