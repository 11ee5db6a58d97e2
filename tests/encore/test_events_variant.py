"""The optional ``variant`` field of the v1 play event: validated, carried, and absent from
the bytes of events that do not set it (no services)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from encore.events import PlayEventInvalid, PlayEventV1, validate_play_event_json
from encore.settings import EventsSettings
from streaming_api.playback import encode_event, parse_playback_events
from tests.events import play_event


def validate(record: dict) -> PlayEventV1:
    # arrival is now, as the record's start_time: a module-level "now" goes stale when the
    # test runs long after collection (the events' clock-skew bound is five minutes)
    return validate_play_event_json(json.dumps(record), datetime.now(UTC), EventsSettings())


def test_an_event_without_variant_is_valid_and_keeps_its_old_bytes() -> None:
    record = play_event()
    event = validate(record)
    assert event.variant is None
    # the JSON is exactly the fields that were sent: nothing new for old consumers to refuse
    assert json.loads(event.to_json_bytes()) == {"schema_version": 1, **record} | {
        "start_time": event.to_record()["start_time"],
        "end_time": event.to_record()["end_time"],
    }
    assert "variant" not in event.to_record()
    assert encode_event(event) == event.to_json_bytes()


def test_a_null_variant_is_the_same_as_none() -> None:
    event = validate(play_event(variant=None))
    assert event.variant is None and "variant" not in event.to_record()


def test_a_variant_is_carried_to_the_kafka_bytes() -> None:
    event = validate(play_event(variant="challenger"))
    assert event.variant == "challenger"
    assert json.loads(event.to_json_bytes())["variant"] == "challenger"
    assert encode_event(event) == event.to_json_bytes()


@pytest.mark.parametrize("bad", ["", "has space", "x" * 33, "champion;drop", 7, True])
def test_a_bad_variant_is_rejected_by_name(bad: object) -> None:
    with pytest.raises(PlayEventInvalid) as caught:
        validate(play_event(variant=bad))
    assert [problem["field"] for problem in caught.value.problems] == ["variant"]


def test_the_api_accepts_a_batch_mixing_events_with_and_without_variant() -> None:
    body = json.dumps({"events": [play_event(variant="champion"), play_event()]}).encode()
    events = parse_playback_events(body, max_events=10)
    assert [event.variant for event in events] == ["champion", None]


def test_the_published_schema_names_variant_as_optional() -> None:
    schema = PlayEventV1.model_json_schema()
    assert "variant" in schema["properties"]
    assert "variant" not in schema.get("required", [])
