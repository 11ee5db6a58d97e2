"""Parsing and encoding of playback-event request bodies (no services)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from encore.events import PlayEventV1
from encore.settings import EventsSettings
from streaming_api.errors import EventValidationError, PayloadTooLargeError
from streaming_api.playback import encode_event, parse_playback_events, request_body_schema
from tests.events import play_event

# ten minutes ago: inside the contract's time bounds whenever the tests run (the API checks
# start_time against the request's arrival)
START = datetime.now(UTC).replace(microsecond=250_000) - timedelta(minutes=10)


def event(**overrides: object) -> dict:
    return play_event(START, **{"song_id": "a1-s0", **overrides})


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
    late = event(end_time=(START - timedelta(hours=1)).isoformat())
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
    tz = timezone(timedelta(hours=2))
    events = parse_playback_events(
        body(
            {
                "events": [
                    event(),
                    event(
                        start_time=START.astimezone(tz).isoformat(),
                        end_time=(START + timedelta(minutes=5)).astimezone(tz).isoformat(),
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


def test_time_bounds_apply_on_the_fast_path_too() -> None:
    """A well-formed batch (one Rust pass) is still checked against its arrival."""
    arrival = START + timedelta(minutes=10)
    ahead = START + timedelta(minutes=16)  # 6 min after arrival: past the 5 min skew
    old = arrival - timedelta(days=30, seconds=1)
    batch = [
        event(),
        event(start_time=ahead.isoformat(), end_time=(ahead + timedelta(minutes=3)).isoformat()),
        event(start_time=old.isoformat(), end_time=(old + timedelta(minutes=3)).isoformat()),
    ]
    with pytest.raises(EventValidationError) as raised:
        parse_playback_events(body({"events": batch}), max_events=10, arrival=arrival)
    items = raised.value.items
    assert [(i["index"], i["field"], i["type"]) for i in items] == [
        (1, "start_time", "time_bound"),
        (2, "start_time", "time_bound"),
    ]
    assert "events.max_clock_skew_s" in items[0]["reason"]
    assert "events.max_event_age_s" in items[1]["reason"]
    assert "2 of 3 events are invalid" in str(raised.value)
    # the same single event: no index; a wider skew setting accepts it
    with pytest.raises(EventValidationError) as raised:
        parse_playback_events(body(batch[1]), max_events=10, arrival=arrival)
    assert [(i["index"], i["field"]) for i in raised.value.items] == [(None, "start_time")]
    wider = EventsSettings(max_clock_skew_s=600)
    [accepted] = parse_playback_events(body(batch[1]), 10, arrival=arrival, bounds=wider)
    assert accepted.start_time == ahead
