"""Shared fixtures of the lake's batch tests: one local Spark session for the whole test
session (a JVM start costs ~15 s), a private lake per test, rows written straight into
registry tables with delta-rs (as the stream or an earlier job would have written them), and
the builders of dimension rows every lake and feature test shares."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from encore.delta import read_lake_table
from encore.engines import create_spark_session
from encore.settings import Settings
from encore.tables import DIM_ARTISTS, DIM_SONGS, DIM_USERS, Table


@pytest.fixture(scope="session")
def spark(platform: Settings) -> Iterator:
    """A ``local[2]`` Spark session with Delta, shared by every lake test."""
    session = create_spark_session(
        platform.model_copy(
            update={"spark": platform.spark.model_copy(update={"master": "local[2]"})}
        ),
        "encore-lake-tests",
        {"spark.sql.shuffle.partitions": "2", "spark.databricks.delta.snapshotPartitions": "2"},
    )
    yield session
    session.stop()


@pytest.fixture()
def lake_settings(platform: Settings, tmp_path: Path) -> Settings:
    """The platform's settings with a lake of the test's own (no other test's tables)."""
    return platform.model_copy(
        update={"lake": platform.lake.model_copy(update={"root": str(tmp_path / "lake")})}
    )


def write_rows(
    settings: Settings, table: Table, rows: Sequence[dict[str, Any]], mode: str = "append"
) -> None:
    """Write ``rows`` (dicts keyed by column name; missing nullable columns are null) into
    ``table`` with its registry schema and partitioning."""
    schema = table.arrow_schema()
    full = [{name: row.get(name) for name in schema.names} for row in rows]
    write_deltalake(
        table.path(settings),
        pa.Table.from_pylist(full, schema=schema),
        mode=mode,
        partition_by=list(table.partition_by) or None,
        storage_options=settings.lake.storage_options or None,
    )


def read_rows(settings: Settings, table: Table, sort_by: Sequence[str] = ()) -> list[dict]:
    """Every row of ``table`` as dicts, sorted by ``sort_by`` (default: the table's key)."""
    order = list(sort_by or table.key or table.column_names)
    data = read_lake_table(settings, table)
    return data.sort_by([(c, "ascending") for c in order]).to_pylist()


CATALOG_TIME = datetime(2026, 1, 1, tzinfo=UTC)
"""When the test catalog's rows were created and last changed."""


def dimension_row(table: Table, defaults: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A row of ``table`` with every column: ``defaults``, overridden by ``fields``, the
    rest null."""
    unknown = set(fields) - set(table.column_names)
    assert not unknown, f"not columns of {table.qualified_name}: {sorted(unknown)}"
    return {name: fields.get(name, defaults.get(name)) for name in table.column_names}


def song_row(song_id: str, artist_id: str = "a-1", **fields: Any) -> dict[str, Any]:
    """A ``dims.songs`` row: album ``al-<artist>``, rock, 200 s, licensed in GB and US, no
    track number or release date, unless ``fields`` say otherwise."""
    defaults = {
        "song_id": song_id,
        "title": song_id,
        "artist_id": artist_id,
        "album_id": f"al-{artist_id}",
        "genre": "rock",
        "duration_ms": 200_000,
        "explicit": False,
        "territories": ["GB", "US"],
        "popularity": 0.5,
        "created_at": CATALOG_TIME,
        "updated_at": CATALOG_TIME,
    }
    return dimension_row(DIM_SONGS, defaults, fields)


def artist_row(artist_id: str, **fields: Any) -> dict[str, Any]:
    """A ``dims.artists`` row named after its id, unless ``fields`` say otherwise."""
    defaults = {
        "artist_id": artist_id,
        "name": artist_id,
        "popularity": 0.5,
        "created_at": CATALOG_TIME,
        "updated_at": CATALOG_TIME,
    }
    return dimension_row(DIM_ARTISTS, defaults, fields)


def user_row(user_id: str, country: str | None = "GB", **fields: Any) -> dict[str, Any]:
    """A ``dims.users`` row (free plan, explicit allowed), unless ``fields`` say otherwise."""
    defaults = {
        "user_id": user_id,
        "country": country,
        "subscription_plan": "free",
        "allow_explicit": True,
        "created_at": CATALOG_TIME,
    }
    return dimension_row(DIM_USERS, defaults, fields)
