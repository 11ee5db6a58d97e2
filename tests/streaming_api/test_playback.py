"""Parsing and encoding of playback-event request bodies (no services)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from encore.events import PlayEventV1
from streaming_api.errors import EventValidationError, PayloadTooLargeError
from streaming_api.playback import encode_event, parse_playback_events, request_body_schema


def event(**overrides: object) -> dict:
    start = datetime(2026, 11, 23, 20, 0, 0, 250_000, tzinfo=UTC)
    record = {
        "event_id": str(uuid.uuid4()),
        "user_id": "u1",
        "song_id": "a1-s0",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=3)).isoformat(),
        "ms_played": 180_000,
        "event_type": "complete",
        "device_type": "mobile",
        "country_code": "SE",
    }
    record.update(overrides)
    return record


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def test_single_event_and_batch_parse() -> None:
    single = event()
    [parsed] = parse_playback_events(body(single), max_events=10)
    assert str(parsed.event_id) == single["event_id"]
    batch = [event(user_id=f"u{i}") for i in range(5)]
    parsed_batch = parse_playback_events(body({"events": batch}), max_events=10)
    assert [e.user_id for e in parsed_batch] == [f"u{i}" for i in range(5)]


def test_bad_items_are_named_by_index_field_and_reason() -> None:
    batch = [event(), event(ms_played="lots"), event(), event(mood="happy"), event(ms_played=-1)]
    with pytest.raises(EventValidationError) as raised:
        parse_playback_events(body({"events": batch}), max_events=10)
    items = {(i["index"], i["field"]) for i in raised.value.items}
    assert items == {(1, "ms_played"), (3, "mood"), (4, "ms_played")}
    assert "3 of 5 events are invalid" in str(raised.value)
    assert all(i["reason"] for i in raised.value.items)


def test_model_level_rule_is_named_on_the_event() -> None:
    late = event(end_time="2026-11-23T19:00:00Z")
    with pytest.raises(EventValidationError) as raised:
        parse_playback_events(body({"events": [event(), late]}), max_events=10)
    [item] = raised.value.items
    assert item["index"] == 1 and "end_time is before start_time" in item["reason"]


def test_single_event_errors_have_no_index() -> None:
    with pytest.raises(EventValidationError) as raised:
        parse_playback_events(body(event(event_type="pause")), max_events=10)
    [item] = raised.value.items
    assert item["index"] is None and item["field"] == "event_type"


@pytest.mark.parametrize(
    "payload",
    [b'{"events": [', b"", b"[]", body({"events": []}), body({"events": {}})],
)
def test_non_events_are_rejected(payload: bytes) -> None:
    with pytest.raises(EventValidationError):
        parse_playback_events(payload, max_events=10)


def test_unknown_batch_field_is_rejected() -> None:
    with pytest.raises(EventValidationError) as raised:
        parse_playback_events(body({"events": [event()], "source": "x"}), max_events=10)
    assert raised.value.items[0]["field"] == "source"


def test_oversize_batch_is_too_large_even_if_items_are_bad() -> None:
    with pytest.raises(PayloadTooLargeError, match="at most 3 events and this one has 4"):
        parse_playback_events(body({"events": [event()] * 4}), max_events=3)
    with pytest.raises(PayloadTooLargeError):
        parse_playback_events(body({"events": [{"x": 1}] * 4}), max_events=3)


def test_encoding_is_the_contracts_bytes() -> None:
    tz = "+02:00"
    events = parse_playback_events(
        body(
            {
                "events": [
                    event(),
                    event(
                        start_time=f"2026-11-23T20:00:00{tz}", end_time=f"2026-11-23T20:05:00{tz}"
                    ),
                    event(event_type="like", ms_played=0),
                ]
            }
        ),
        max_events=10,
    )
    for parsed in events:
        assert encode_event(parsed) == parsed.to_json_bytes()
        assert PlayEventV1.model_validate_json(encode_event(parsed)) == parsed


def test_openapi_body_documents_the_limit() -> None:
    schema = request_body_schema(max_events=250)
    batch = schema["components"]["PlayEventBatch"]
    assert batch["properties"]["events"]["maxItems"] == 250
    assert {"PlayEventV1", "PlayEventBatch"} <= set(schema["components"])


@pytest.mark.parametrize(
    "bad",
    [
        {"ms_played": "180000"},  # a string where the contract has an integer
        {"ms_played": 180000.0},
        {"start_time": 1795467600, "end_time": 1795467780},  # epoch numbers, not ISO-8601
        {"event_type": 1},
    ],
)
def test_wrong_json_types_are_rejected_not_coerced(bad: dict) -> None:
    for payload in ({"events": [event(), event(**bad)]}, event(**bad)):
        with pytest.raises(EventValidationError) as raised:
            parse_playback_events(body(payload), max_events=10)
        fields = {item["field"] for item in raised.value.items}
        assert fields <= set(bad) and fields
