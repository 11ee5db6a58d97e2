"""Validation of one Kafka record against the v1 contract (no services)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from pipelines.ingest.parse import MAX_RAW_CHARS, epoch_us, parse_record
from tests.pipelines.ingest.producing import valid_events


def test_a_valid_event_becomes_its_bronze_columns() -> None:
    event = valid_events(1)[0]
    parsed = parse_record(event.to_json_bytes())
    assert parsed.reason is None and parsed.raw_payload is None
    assert parsed.event_id == str(event.event_id)
    assert parsed.start_us == epoch_us(event.start_time)
    assert parsed.event_date == event.start_time.date()
    assert (parsed.event_type, parsed.device_type) == (event.event_type, event.device_type)


def test_times_are_normalised_to_utc() -> None:
    record = valid_events(1)[0].to_record()
    record["start_time"] = "2026-11-23T23:30:00-02:00"  # 01:30 UTC the next day
    record["end_time"] = "2026-11-24T01:35:00Z"
    record["ms_played"] = 1000
    parsed = parse_record(json.dumps(record).encode())
    assert parsed.reason is None
    assert parsed.event_date == date(2026, 11, 24)
    assert parsed.start_us == epoch_us(datetime(2026, 11, 24, 1, 30, tzinfo=UTC))


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
    parsed = parse_record(payload)
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
    parsed = parse_record(payload)
    assert fragment in parsed.reason
    assert isinstance(parsed.raw_payload, str)


def test_huge_payloads_are_kept_truncated() -> None:
    parsed = parse_record(b"x" * (MAX_RAW_CHARS + 10))
    assert parsed.raw_payload.endswith(f"[truncated, {MAX_RAW_CHARS + 10} bytes]")
    assert len(parsed.reason) <= 1000
