import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from encore.events import PlayEventV1, play_event_json_schema


def event(**overrides):
    start = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    record = {
        "event_id": str(uuid.uuid4()),
        "user_id": "u1",
        "song_id": "s1",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=3)).isoformat(),
        "ms_played": 180_000,
        "event_type": "complete",
        "device_type": "mobile",
        "country_code": "SE",
    }
    record.update(overrides)
    return record


def test_valid_event_round_trips_as_json():
    parsed = PlayEventV1.model_validate(event())
    again = PlayEventV1.model_validate_json(parsed.to_json_bytes())
    assert again == parsed
    assert again.schema_version == 1


def test_times_are_normalised_to_utc():
    tz = timezone(timedelta(hours=2))
    start = datetime(2026, 11, 23, 22, 0, tzinfo=tz)
    parsed = PlayEventV1.model_validate(
        event(
            start_time=start.isoformat(),
            end_time=(start + timedelta(seconds=30)).isoformat(),
            ms_played=30_000,
        )
    )
    assert parsed.start_time == datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    assert parsed.start_time.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"extra_field": 1}, "extra_field"),
        ({"event_type": "pause"}, "event_type"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"ms_played": -1}, "ms_played"),
        ({"ms_played": "lots"}, "ms_played"),
        ({"country_code": "sweden"}, "country_code"),
        ({"start_time": "2026-11-23T20:00:00"}, "timezone"),
        ({"ms_played": 10 * 60_000}, "exceeds"),
        ({"end_time": "2026-11-23T19:00:00Z"}, "before"),
        ({"user_id": ""}, "user_id"),
    ],
)
def test_bad_events_are_rejected_with_a_reason(overrides, message):
    with pytest.raises(ValidationError) as error:
        PlayEventV1.model_validate(event(**overrides))
    assert message in str(error.value)


def test_json_schema_lists_every_field_and_forbids_others():
    schema = play_event_json_schema()
    assert schema["additionalProperties"] is False
    for name in (
        "event_id",
        "user_id",
        "song_id",
        "start_time",
        "end_time",
        "ms_played",
        "event_type",
        "device_type",
        "country_code",
    ):
        assert name in schema["properties"]
    json.dumps(schema)
