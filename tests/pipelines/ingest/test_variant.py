"""The event's ``variant`` reaches bronze: parsed from the record, written by the sink, and
added as a null column to a bronze table created before the field existed (no services)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from encore.delta import read_lake_table
from encore.settings import Settings
from encore.tables import PLAY_EVENTS
from pipelines.ingest import control
from pipelines.ingest.delta_sink import OffsetTiedWriter
from pipelines.ingest.parse import EVENT_FIELDS, parse_record
from tests.pipelines.ingest.conftest import produce
from tests.pipelines.ingest.producing import valid_events

ARRIVAL = datetime(2026, 11, 23, 20, 1, tzinfo=UTC)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, lake={"root": str(tmp_path / "lake")})


def records(variants: list[str | None]) -> list[bytes]:
    out = []
    for event, variant in zip(valid_events(len(variants)), variants, strict=True):
        record = event.to_record()
        if variant is not None:
            record["variant"] = variant
        out.append(json.dumps(record).encode())
    return out


def bronze_batch(payloads: list[bytes], first_offset: int = 0) -> dict[str, list]:
    parsed = [parse_record(payload, ARRIVAL) for payload in payloads]
    assert all(p.reason is None for p in parsed), [p.reason for p in parsed]
    columns = {name: [getattr(p, name) for p in parsed] for name, _ in EVENT_FIELDS}
    return columns | {
        "kafka_partition": [0] * len(parsed),
        "kafka_offset": list(range(first_offset, first_offset + len(parsed))),
        "ingested_at": [ARRIVAL] * len(parsed),
    }


def test_the_parse_carries_variant_and_null_without_it() -> None:
    parsed = [parse_record(payload, ARRIVAL) for payload in records(["challenger", None])]
    assert [p.variant for p in parsed] == ["challenger", None]


def test_variant_lands_in_bronze(settings: Settings) -> None:
    writer = OffsetTiedWriter(PLAY_EVENTS, settings, "play-events")
    writer.write(bronze_batch(records(["champion", None, "challenger"])))
    rows = read_lake_table(settings, PLAY_EVENTS, columns=["kafka_offset", "variant"])
    assert sorted(rows.to_pylist(), key=lambda r: r["kafka_offset"]) == [
        {"kafka_offset": 0, "variant": "champion"},
        {"kafka_offset": 1, "variant": None},
        {"kafka_offset": 2, "variant": "challenger"},
    ]


def test_a_bronze_table_from_before_variant_gains_the_column(settings: Settings) -> None:
    old_schema = pa.schema([f for f in PLAY_EVENTS.arrow_schema() if f.name != "variant"])
    old = bronze_batch(records([None, None]))
    write_deltalake(
        PLAY_EVENTS.path(settings),
        pa.table({f.name: old[f.name] for f in old_schema}, schema=old_schema),
        partition_by=list(PLAY_EVENTS.partition_by),
    )
    writer = OffsetTiedWriter(PLAY_EVENTS, settings, "play-events")
    writer.write(bronze_batch(records(["challenger"]), first_offset=2))
    rows = read_lake_table(settings, PLAY_EVENTS)
    assert rows.schema.names == PLAY_EVENTS.column_names
    by_offset = {r["kafka_offset"]: r["variant"] for r in rows.to_pylist()}
    assert by_offset == {0: None, 1: None, 2: "challenger"}
    assert {r["event_date"] for r in rows.to_pylist()} == {date(2026, 11, 23)}


@pytest.mark.integration
@pytest.mark.flink
@pytest.mark.slow
def test_the_job_writes_variant_to_bronze(ingest_settings: Settings) -> None:
    variants = ["champion", "challenger", None]
    events = valid_events(30, start=datetime.now(UTC) - timedelta(minutes=10))
    expected, sent = {}, []
    for i, event in enumerate(events):
        record = event.to_record()
        variant = variants[i % len(variants)]
        if variant is not None:
            record["variant"] = variant
        expected[str(event.event_id)] = variant
        sent.append((event.user_id, json.dumps(record).encode()))
    produce(ingest_settings, sent)
    control.start(ingest_settings)
    control.wait_until_caught_up(ingest_settings, timeout_s=180)
    rows = read_lake_table(ingest_settings, PLAY_EVENTS, ["event_id", "variant"]).to_pylist()
    assert {row["event_id"]: row["variant"] for row in rows} == expected
