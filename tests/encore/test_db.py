"""The migrations against real PostgreSQL: an existing database keeps its accounts, the
upgraded schema is the code's, and the API refuses a schema that is behind."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from encore.db import create_engine, migrate
from encore.db.schema import metadata
from encore.settings import Settings, settings_env
from streaming_api.accounts import AccountStore
from streaming_api.app import create_app
from streaming_api.auth import hash_password
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration

ENCORE = str(Path(sys.executable).parent / "encore")

# exactly what the play-events issue's `metadata.create_all` made, before migrations existed
LEGACY_ACCOUNTS = """
CREATE TABLE accounts (
    user_id VARCHAR(64) NOT NULL, username VARCHAR(64) NOT NULL,
    password_hash VARCHAR(256) NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (user_id), UNIQUE (username)
)
"""


def encore(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENCORE, *args],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_upgrade_adopts_a_database_made_before_migrations_and_keeps_its_accounts(
    platform: Settings,
) -> None:
    settings = fresh_database(platform, "legacy_accounts", revision=None)
    created = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        connection.execute(LEGACY_ACCOUNTS)
        for user, password in (("u-ada", "analytical-engine"), ("u-alan", "turing-machine")):
            connection.execute(
                "INSERT INTO accounts VALUES (%s, %s, %s, %s)",
                (user, user[2:], hash_password(password), created),
            )

    done = encore(settings, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"(empty) -> {migrate.head_revision()}" in done.stderr

    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        rows = connection.execute(
            "SELECT user_id, username, created_at, email, country, subscription_plan,"
            " allow_explicit FROM accounts ORDER BY user_id"
        ).fetchall()
    assert rows == [
        ("u-ada", "ada", created, None, None, "free", True),
        ("u-alan", "alan", created, None, None, "free", True),
    ]
    engine = create_engine(settings, pool_size=1)
    try:  # the old password hashes still log in
        assert AccountStore(engine).authenticate("ada", "analytical-engine").user_id == "u-ada"
    finally:
        engine.dispose()

    again = encore(settings, "db", "upgrade")
    assert again.returncode == 0 and "already at revision" in again.stderr


def test_the_upgraded_schema_is_the_codes(platform: Settings) -> None:
    settings = fresh_database(platform, "schema_check")
    engine = create_engine(settings, pool_size=1)
    try:
        database = inspect(engine)
        for table in metadata.sorted_tables:
            columns = {column["name"]: column for column in database.get_columns(table.name)}
            assert set(columns) == set(table.columns.keys()), table.name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable, (
                    f"{table.name}.{column.name}"
                )
    finally:
        engine.dispose()


def test_the_api_refuses_a_schema_that_is_behind(platform: Settings) -> None:
    settings = fresh_database(platform, "behind", revision="0001")
    # in-process: start-up fails naming the command
    with (
        pytest.raises(migrate.SchemaBehindError, match="encore db upgrade"),
        TestClient(create_app(settings)),
    ):
        pass
    # `encore api`: one line, exit 1, before any worker starts
    done = encore(settings, "api", "--port", "1")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "0001" in lines[0] and "encore db upgrade" in lines[0], done.stderr
    current = encore(settings, "db", "current")
    assert "behind: run `encore db upgrade`" in current.stderr
