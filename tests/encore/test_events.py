import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from encore.events import PlayEventV1, play_event_json_schema
from tests.events import play_event


def event(**overrides):
    return play_event(datetime(2026, 11, 23, 20, 0, tzinfo=UTC), **overrides)


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


from encore.errors import ContractError  # noqa: E402
from encore.events import (  # noqa: E402
    PlayEventInvalid,
    validate_play_event_json,
    validate_play_events_json,
)
from encore.settings import EventsSettings  # noqa: E402

ARRIVAL = datetime(2026, 11, 23, 20, 1, tzinfo=UTC)
BOUNDS = EventsSettings()


def test_the_validator_is_strict_about_json_types():
    for bad, field in (
        ({"ms_played": "180000"}, "ms_played"),
        ({"ms_played": True}, "ms_played"),
        ({"start_time": 1795464000}, "start_time"),
        ({"schema_version": "1"}, "schema_version"),
    ):
        with pytest.raises(PlayEventInvalid) as raised:
            validate_play_event_json(json.dumps(event(**bad)), ARRIVAL, BOUNDS)
        assert [p["field"] for p in raised.value.problems] == [field], bad
        assert raised.value.reason().startswith(f"{field}: ")
        if field != "schema_version":  # lax mode would coerce these: the validator is strict
            PlayEventV1.model_validate_json(json.dumps(event(**bad)))
    assert isinstance(raised.value, ContractError)


@pytest.mark.parametrize(
    ("start", "accepted", "bound"),
    [
        (ARRIVAL + timedelta(seconds=300), True, None),
        (ARRIVAL + timedelta(seconds=301), False, "max_clock_skew_s"),
        (ARRIVAL - timedelta(days=30), True, None),
        (ARRIVAL - timedelta(days=30, seconds=1), False, "max_event_age_s"),
    ],
)
def test_start_time_is_bounded_by_the_arrival(start, accepted, bound):
    # a play of zero length: only start_time is at stake
    raw = json.dumps(event(start_time=start.isoformat(), end_time=start.isoformat(), ms_played=0))
    if accepted:
        assert validate_play_event_json(raw, ARRIVAL, BOUNDS).start_time == start
        return
    with pytest.raises(PlayEventInvalid) as raised:
        validate_play_event_json(raw, ARRIVAL, BOUNDS)
    [problem] = raised.value.problems
    assert (problem["field"], problem["type"], problem["index"]) == (
        "start_time",
        "time_bound",
        None,
    )
    assert f"events.{bound}" in problem["reason"]


def test_the_bounds_come_from_the_settings():
    late = ARRIVAL + timedelta(minutes=2)
    raw = json.dumps(
        event(start_time=late.isoformat(), end_time=(late + timedelta(minutes=3)).isoformat())
    )
    assert validate_play_event_json(raw, ARRIVAL, BOUNDS)
    with pytest.raises(PlayEventInvalid) as raised:
        validate_play_event_json(raw, ARRIVAL, EventsSettings(max_clock_skew_s=60))
    assert "more than 60 s after" in raised.value.reason()


def test_the_batch_form_names_each_bad_item_by_index():
    future = ARRIVAL + timedelta(hours=1)
    batch = [
        event(),
        event(ms_played="1"),
        event(),
        event(start_time=future.isoformat(), end_time=(future + timedelta(minutes=3)).isoformat()),
    ]
    with pytest.raises(PlayEventInvalid) as raised:
        validate_play_events_json(json.dumps(batch), ARRIVAL, BOUNDS)
    assert [(p["index"], p["field"]) for p in raised.value.problems] == [(1, "ms_played")]
    del batch[1]  # type errors first; time bounds once every item is well-formed
    with pytest.raises(PlayEventInvalid) as raised:
        validate_play_events_json(json.dumps(batch), ARRIVAL, BOUNDS)
    assert [(p["index"], p["field"]) for p in raised.value.problems] == [(2, "start_time")]
    assert len(validate_play_events_json(json.dumps(batch[:2]), ARRIVAL, BOUNDS)) == 2
