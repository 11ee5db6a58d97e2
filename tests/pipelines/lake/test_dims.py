"""The dimensions job and the build audit, against real PostgreSQL, Spark and Delta.

A fresh database holds a small synthetic catalog and two accounts (with e-mails and password
hashes); the dims tables must equal it column for column, hold no credentials, stay equal
through a second run, follow changes (an update, a licence change, a deletion, a new
account), and every run must append its records to ``ops.job_runs``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from encore.delta import read_lake_table
from encore.errors import ConfigurationError
from encore.settings import Settings, settings_env
from encore.tables import DIM_SONGS, DIM_USERS, JOB_RUNS, TABLES, Table, tables_in
from pipelines.lake import audit
from pipelines.lake.dims import jdbc_source, merge_snapshot, registry_changed, snapshot_changes
from streaming_api.catalog.load import load_catalog
from tests.conftest import fresh_database
from tests.pipelines.lake.conftest import read_rows, song_row

DAY = date(2026, 11, 30)
CREDENTIALS = {"password_hash", "email", "username"}


def insert_account(settings: Settings, user_id: str, country: str | None, plan: str) -> None:
    with psycopg.connect(settings.postgres.effective_dsn, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO accounts (user_id, username, password_hash, created_at, email, "
            "country, subscription_plan, allow_explicit) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, false)",
            (
                user_id,
                f"name-of-{user_id}",
                f"scrypt$secret-hash-of-{user_id}",
                datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
                f"{user_id}@mail.example",
                country,
                plan,
            ),
        )


def source_rows(settings: Settings, table: Table) -> list[tuple]:
    """The source table's rows, the dims table's columns, sorted by key."""
    columns = ", ".join(table.column_names)
    order = ", ".join(table.key)
    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        return connection.execute(
            f"SELECT {columns} FROM {table.extra['source_table']} ORDER BY {order}"
        ).fetchall()


def lake_rows(settings: Settings, table: Table) -> list[tuple]:
    """The Delta table's rows, read with delta-rs (not the engine that wrote them)."""
    data = read_lake_table(settings, table)
    assert data.column_names == table.column_names
    rows = [tuple(row[c] for c in table.column_names) for row in data.to_pylist()]
    return sorted(rows, key=lambda row: row[: len(table.key)])


def data_files(settings: Settings, table: Table) -> set[str]:
    return set(DeltaTable(table.path(settings)).file_uris())


def assert_dims_equal_database(settings: Settings) -> None:
    for table in tables_in("dims"):
        assert lake_rows(settings, table) == source_rows(settings, table), table.qualified_name


# -- no services --------------------------------------------------------------------------


def test_the_registry_declares_what_the_dims_job_needs():
    dims = tables_in("dims")
    assert [t.name for t in dims] == ["artists", "albums", "songs", "users"]
    for table in TABLES.values():
        assert set(table.key) <= set(table.column_names), table.qualified_name
    for table in dims:
        assert table.key and table.extra.get("source_table"), table.qualified_name
    assert not CREDENTIALS & set(DIM_USERS.column_names)


def test_licensing_territories_are_a_non_null_list_of_strings_in_every_engine():
    import pyarrow as pa
    from pyspark.sql import types as T

    (column,) = [c for c in DIM_SONGS.columns if c.name == "territories"]
    assert (column.dtype, column.nullable) == ("array<string>", False)
    arrow = DIM_SONGS.arrow_schema().field("territories")
    assert pa.types.is_list(arrow.type) and arrow.type.value_type == pa.string()
    assert not arrow.nullable
    spark = DIM_SONGS.spark_schema()["territories"]
    assert spark.dataType == T.ArrayType(T.StringType()) and not spark.nullable


def test_the_jdbc_url_never_carries_the_password(tmp_path: Path):
    settings = Settings(
        home=tmp_path,
        postgres={
            "dsn": "postgresql+psycopg://ana:s3cr%40t@db.internal:6543/encore?sslmode=require"
        },
    )
    url, properties = jdbc_source(settings)
    assert url == "jdbc:postgresql://db.internal:6543/encore"
    assert properties["user"] == "ana"
    assert properties["password"] == "s3cr@t"
    assert properties["sslmode"] == "require"
    assert properties["driver"] == "org.postgresql.Driver"


def test_the_build_plan_runs_each_job_over_the_range_in_job_order():
    snapshot = audit.Job("snap", "x:y", snapshot=True)
    daily = audit.Job("daily", "x:y")
    plan = audit.build_plan(date(2026, 1, 30), date(2026, 2, 1), (snapshot, daily))
    assert [(s.job.name, s.day) for s in plan] == [
        ("snap", date(2026, 2, 1)),
        ("daily", date(2026, 1, 30)),
        ("daily", date(2026, 1, 31)),
        ("daily", date(2026, 2, 1)),
    ]
    assert audit.JOBS[0].name == "dims"
    with pytest.raises(ConfigurationError, match="starts after it ends"):
        audit.build_plan(date(2026, 2, 2), date(2026, 2, 1))


# -- Spark and Delta, no database ---------------------------------------------------------


def songs_frame(spark, rows: list[dict]):
    # song_row gives every column, in registry order
    return spark.createDataFrame([tuple(r.values()) for r in rows], DIM_SONGS.spark_schema())


@pytest.mark.spark
def test_a_changed_territory_list_is_a_change(spark):
    target = [song_row("s-1"), song_row("s-2"), song_row("s-3")]
    source = [
        song_row("s-1"),  # unchanged
        song_row("s-2", territories=["GB"]),  # licence withdrawn from US
        song_row("s-3", territories=["US", "GB"]),  # reordered: copied as PostgreSQL holds it
        song_row("s-4", territories=[]),  # new, licensed nowhere yet
    ]
    changes = snapshot_changes(DIM_SONGS, songs_frame(spark, source), songs_frame(spark, target))
    changed = {r["song_id"]: (r["territories"], r["_deleted"]) for r in changes.collect()}
    assert changed == {
        "s-2": (["GB"], False),
        "s-3": (["US", "GB"], False),
        "s-4": ([], False),
    }


@pytest.mark.spark
def test_a_copy_older_than_the_registry_is_replaced_and_filled(spark, lake_settings):
    """dims.songs as copied before it had ``territories``: the next run gives it the
    registry's schema and every source row."""
    old_schema = pa.schema([f for f in DIM_SONGS.arrow_schema() if f.name != "territories"])
    old_rows = [song_row("s-1"), song_row("s-gone")]
    write_deltalake(
        DIM_SONGS.path(lake_settings), pa.Table.from_pylist(old_rows, schema=old_schema)
    )
    source = [song_row("s-1", territories=["SE"]), song_row("s-2")]

    merge_snapshot(spark, lake_settings, DIM_SONGS, songs_frame(spark, source))

    assert read_rows(lake_settings, DIM_SONGS) == source
    schema = DeltaTable(DIM_SONGS.path(lake_settings)).schema().to_arrow()
    assert [f.name for f in schema] == DIM_SONGS.column_names
    assert not registry_changed(spark, DIM_SONGS, DIM_SONGS.path(lake_settings))


# -- PostgreSQL, Spark, Delta -------------------------------------------------------------


@pytest.fixture()
def dims_settings(platform: Settings, tmp_path: Path) -> Settings:
    settings = fresh_database(platform, "lake_dims")
    settings = settings.model_copy(
        update={"lake": settings.lake.model_copy(update={"root": str(tmp_path / "lake")})}
    )
    load_catalog(settings, artists=5, songs_per_artist=3)
    insert_account(settings, "u-ana", "PT", "premium")
    insert_account(settings, "u-bo", None, "free")
    return settings


@pytest.mark.integration
@pytest.mark.spark
def test_dims_copy_the_database_twice_alike_and_follow_its_changes(spark, dims_settings):
    settings = dims_settings
    plan = audit.build_plan(DAY, DAY, audit.JOBS[:1])  # the dims job alone

    first = audit.build(spark, settings, plan)
    assert_dims_equal_database(settings)
    assert all(source_rows(settings, t) for t in tables_in("dims"))  # none trivially equal
    assert not CREDENTIALS & set(DeltaTable(DIM_USERS.path(settings)).schema().to_arrow().names)
    content = {t.qualified_name: lake_rows(settings, t) for t in tables_in("dims")}
    for record in first:
        count = len(content[record.table])
        assert (record.day, record.rows_in, record.rows_out) == (DAY, count, count)

    files = {t.qualified_name: data_files(settings, t) for t in tables_in("dims")}
    second = audit.build(spark, settings, plan)
    assert {t.qualified_name: lake_rows(settings, t) for t in tables_in("dims")} == content
    # nothing changed, so nothing was committed and no data file was rewritten
    assert {t.qualified_name: data_files(settings, t) for t in tables_in("dims")} == files
    assert [r.delta_version for r in second] == [r.delta_version for r in first]

    runs = audit.read_runs(settings).to_pylist()
    assert len(runs) == 8
    assert [r["table_name"] for r in runs[:4]] == [t.qualified_name for t in tables_in("dims")]
    assert len({r["run_id"] for r in runs}) == 2
    assert {r["job"] for r in runs} == {"dims"}
    assert DeltaTable(JOB_RUNS.path(settings)).schema().to_arrow().names == JOB_RUNS.column_names

    with psycopg.connect(settings.postgres.effective_dsn, autocommit=True) as connection:
        song_id, relicensed = connection.execute(
            "SELECT min(song_id), max(song_id) FROM songs"
        ).fetchone()
        connection.execute(
            "UPDATE songs SET title = 'Renamed', genre = 'jazz' WHERE song_id = %s", (song_id,)
        )
        # only its licence changes (updated_at too would make any column's change visible)
        connection.execute(
            "UPDATE songs SET territories = ARRAY['NZ'] WHERE song_id = %s", (relicensed,)
        )
        connection.execute("UPDATE accounts SET country = 'BR' WHERE user_id = 'u-bo'")
        connection.execute("DELETE FROM accounts WHERE user_id = 'u-ana'")
    insert_account(settings, "u-cy", "JP", "student")
    third = audit.build(spark, settings, plan)
    assert_dims_equal_database(settings)
    songs = {row[0]: row for row in lake_rows(settings, DIM_SONGS)}
    assert songs[relicensed][DIM_SONGS.column_names.index("territories")] == ["NZ"]
    users = {row[0]: row for row in lake_rows(settings, DIM_USERS)}
    assert set(users) == {"u-bo", "u-cy"} and users["u-bo"][1] == "BR"
    versions = {
        r.table: r.delta_version - before.delta_version
        for r, before in zip(third, second, strict=True)
    }
    assert versions == {"dims.artists": 0, "dims.albums": 0, "dims.songs": 1, "dims.users": 1}
    assert len(audit.read_runs(settings)) == 12


def encore_command(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    """``encore ...`` in a child process with ``settings``: the build starts (and stops) a
    Spark session of its own, which in this process would be the tests' shared one."""
    env = {**os.environ, **settings_env(settings), "COLUMNS": "200"}
    encore = Path(sys.executable).parent / "encore"
    return subprocess.run(
        [str(encore), *args], env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.integration
@pytest.mark.spark
def test_the_build_command_reports_each_table_and_refuses_a_reversed_range(dims_settings):
    """The whole build (every job of ``audit.JOBS``) over three days of an empty lake."""
    for job in audit.JOBS:
        job.load()  # every job of the build exists (an import error fails here, by name)

    reversed_range = encore_command(
        dims_settings, "lake", "build", "--from", "2026-02-02", "--to", "2026-02-01"
    )
    assert reversed_range.returncode == 1
    assert "starts after it ends: 2026-02-02 > 2026-02-01" in reversed_range.stderr

    result = encore_command(
        dims_settings, "lake", "build", "--from", "2026-01-30", "--to", "2026-02-01"
    )
    assert result.returncode == 0, result.stderr
    assert "late data" not in result.stderr  # no bronze: nothing is late
    for table in tables_in("dims"):
        assert f"dims 2026-02-01 {table.qualified_name}: v1," in result.stderr
    for day in ("2026-01-30", "2026-01-31", "2026-02-01"):
        assert f"silver_plays {day} silver.plays:" in result.stderr
    runs = audit.read_runs(dims_settings).to_pylist()
    dims_runs = [(r["table_name"], r["day"]) for r in runs if r["job"] == "dims"]
    assert dims_runs == [(t.qualified_name, date(2026, 2, 1)) for t in tables_in("dims")]
    # the audit follows the build order (publishing writes no lake table, so no record)
    order = [[j.name for j in audit.JOBS].index(r["job"]) for r in runs]
    assert order == sorted(order) and len(set(order)) >= 4
