"""silver.plays carries the events' A/B ``variant`` (null without one), also from a bronze
table, or onto a silver table, written before the column existed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from encore.settings import Settings
from encore.tables import PLAY_EVENTS, SILVER_PLAYS, Table
from pipelines.lake import silver
from tests.pipelines.lake.conftest import read_rows, write_rows

pytestmark = [pytest.mark.spark]

DAY = date(2026, 11, 29)
ARRIVAL = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)


def event(n: int, variant: str | None) -> dict[str, Any]:
    start = datetime(2026, 11, 29, 10, n, tzinfo=UTC)
    return {
        "event_id": f"e-{n}",
        "user_id": f"u-{n % 3}",
        "song_id": "s-1",
        "start_time": start,
        "end_time": start + timedelta(seconds=50),
        "ms_played": 50_000,
        "event_type": "play",
        "device_type": "web",
        "country_code": "SE",
        "schema_version": 1,
        "event_date": DAY,
        "kafka_partition": 0,
        "kafka_offset": n,
        "ingested_at": ARRIVAL,
        "variant": variant,
    }


def write_without_variant(settings: Settings, table: Table, rows: list[dict[str, Any]]) -> None:
    """``rows`` into ``table`` as it was before the registry gained ``variant``."""
    schema = pa.schema([f for f in table.arrow_schema() if f.name != "variant"])
    write_deltalake(
        table.path(settings),
        pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema),
        partition_by=list(table.partition_by),
    )


def variants(settings: Settings) -> dict[str, str | None]:
    return {row["event_id"]: row["variant"] for row in read_rows(settings, SILVER_PLAYS)}


def test_silver_plays_carry_the_variant(spark, lake_settings: Settings) -> None:
    rows = [event(1, "champion"), event(2, "challenger"), event(3, None)]
    write_rows(lake_settings, PLAY_EVENTS, rows)
    silver.run_plays(spark, lake_settings, DAY)
    assert variants(lake_settings) == {r["event_id"]: r["variant"] for r in rows}


def test_tables_from_before_variant_read_and_gain_it_as_null(spark, lake_settings) -> None:
    old_rows = [event(1, None), event(2, None)]
    write_without_variant(lake_settings, PLAY_EVENTS, old_rows)
    silver_before = [
        {**r, "song_known": False, "user_known": False, "completed": True, "skipped": False}
        | {"local_hour": 11}
        for r in old_rows
    ]
    write_without_variant(lake_settings, SILVER_PLAYS, silver_before)
    silver.run_plays(spark, lake_settings, DAY)
    assert variants(lake_settings) == {"e-1": None, "e-2": None}
