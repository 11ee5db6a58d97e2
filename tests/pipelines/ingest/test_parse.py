"""Validation of one Kafka record against the v1 contract (no services)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines.ingest.parse import MAX_RAW_CHARS, epoch_us, parse_record
from tests.pipelines.ingest.producing import valid_events

# valid_events start at 2026-11-23 20:00 UTC; the broker received them a minute later
ARRIVAL = datetime(2026, 11, 23, 20, 1, tzinfo=UTC)


def test_a_valid_event_becomes_its_bronze_columns() -> None:
    event = valid_events(1)[0]
    parsed = parse_record(event.to_json_bytes(), ARRIVAL)
    assert parsed.reason is None and parsed.raw_payload is None
    assert parsed.event_id == str(event.event_id)
    assert parsed.start_time == epoch_us(event.start_time)
    assert parsed.event_date == event.start_time.date()
    assert (parsed.event_type, parsed.device_type) == (event.event_type, event.device_type)


def test_times_are_normalised_to_utc() -> None:
    record = valid_events(1)[0].to_record()
    record["start_time"] = "2026-11-23T23:30:00-02:00"  # 01:30 UTC the next day
    record["end_time"] = "2026-11-24T01:35:00Z"
    record["ms_played"] = 1000
    parsed = parse_record(json.dumps(record).encode(), datetime(2026, 11, 24, 1, 36, tzinfo=UTC))
    assert parsed.reason is None
    assert parsed.event_date == date(2026, 11, 24)
    assert parsed.start_time == epoch_us(datetime(2026, 11, 24, 1, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({"country_code": "usa"}, "country_code"),
        ({"ms_played": 10**9}, "ms_played"),
        ({"event_type": "pause"}, "event_type"),
        ({"schema_version": 2}, "schema_version"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"start_time": "2026-11-23T20:00:00"}, "must carry a timezone offset"),
    ],
)
def test_contract_violations_are_rejected_with_the_field(change: dict, fragment: str) -> None:
    record = valid_events(1)[0].to_record() | change
    payload = json.dumps(record).encode()
    parsed = parse_record(payload, ARRIVAL)
    assert parsed.event_id is None
    assert fragment in parsed.reason
    assert parsed.raw_payload == payload.decode()


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (None, "empty record value"),
        (b"   ", "empty record value"),
        (b'{"event_id": 1', "Invalid JSON"),
        (b"\xff\xfe\x00", "Invalid JSON"),
        (b"[1, 2]", "event"),
    ],
)
def test_garbage_is_rejected_not_raised(payload: bytes | None, fragment: str) -> None:
    parsed = parse_record(payload, ARRIVAL)
    assert fragment in parsed.reason
    assert isinstance(parsed.raw_payload, str)


def test_huge_payloads_are_kept_truncated() -> None:
    parsed = parse_record(b"x" * (MAX_RAW_CHARS + 10), ARRIVAL)
    assert parsed.raw_payload.endswith(f"[truncated, {MAX_RAW_CHARS + 10} bytes]")
    assert len(parsed.reason) <= 1000


def test_time_bounds_are_against_arrival_and_trending_time_is_clamped() -> None:
    start = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    event = valid_events(1)[0].model_copy(
        update={"end_time": start + timedelta(seconds=30), "ms_played": 30_000}
    )
    early = datetime(2026, 11, 23, 19, 56, tzinfo=UTC)  # the client clock runs 4 min ahead
    parsed = parse_record(event.to_json_bytes(), early)
    assert parsed.reason is None
    assert parsed.start_time == epoch_us(event.start_time)  # bronze keeps the claim
    assert parsed.event_time_us == epoch_us(early)  # trending counts it when it arrived
    assert parse_record(event.to_json_bytes(), ARRIVAL).event_time_us == parsed.start_time
    too_early = parse_record(event.to_json_bytes(), datetime(2026, 11, 23, 19, 54, tzinfo=UTC))
    assert too_early.reason.startswith("start_time: ") and "max_clock_skew_s" in too_early.reason
    too_old = parse_record(event.to_json_bytes(), datetime(2026, 12, 24, tzinfo=UTC))
    assert too_old.reason.startswith("start_time: ") and "max_event_age_s" in too_old.reason


def test_the_parse_gives_every_bronze_column_the_sink_does_not_stamp() -> None:
    from encore.tables import PLAY_EVENTS
    from pipelines.ingest.parse import PARSED_FIELDS, SINK_COLUMNS, SOURCE_COLUMNS

    names = [name for name, _ in PARSED_FIELDS]
    assert names[-3:] == ["event_time_us", "reason", "raw_payload"]
    assert names[:-3] == [
        name for name in PLAY_EVENTS.column_names if name not in SINK_COLUMNS + SOURCE_COLUMNS
    ]
    # every required bronze column the parse produces has a value for a valid event
    parsed = parse_record(valid_events(1)[0].to_json_bytes(), ARRIVAL)
    optional = {c.name for c in PLAY_EVENTS.columns if c.nullable}
    assert all(
        getattr(parsed, name) is not None for name, _ in PARSED_FIELDS[:-2] if name not in optional
    )
