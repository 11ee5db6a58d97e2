"""Playback events as the API receives them: parse, validate, encode for Kafka.

The hot path of the API. A request body is parsed once by pydantic-core (Rust) and validated
as a whole against the v1 contract before anything is sent: one bad item rejects the
request, so a batch is all-or-nothing and a client can retry it as is. The checks are
``encore.events``' (the ingestion job applies the same ones to records arriving on Kafka):
pydantic's strict JSON mode (a JSON value of the wrong type, ``"180000"`` for ``ms_played``
or a number for a time, is rejected, not coerced), then the time bounds of ``start_time``
against the request's arrival (``settings.events``). The common case, a well-formed batch,
costs one Rust pass plus two comparisons per event; only a failing body takes the slower
path that names every problem.

Encoding uses pydantic's Rust serializer, which writes the same bytes as
``PlayEventV1.to_json_bytes()`` at a fraction of the cost (a test pins that equality).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from encore.events import (
    PlayEventInvalid,
    PlayEventV1,
    time_bound_problems,
    validate_play_event_json,
    validate_play_events_json,
)
from encore.settings import EventsSettings
from streaming_api.errors import EventValidationError, PayloadTooLargeError


class PlayEventBatch(BaseModel):
    """A batch of play events, validated together: all are accepted or none."""

    model_config = ConfigDict(extra="forbid")

    events: list[PlayEventV1] = Field(min_length=1)


class AcceptedEvents(BaseModel):
    """Events Kafka has acknowledged; they will reach the lake."""

    accepted: int
    event_ids: list[str]


def request_body_schema(max_events: int) -> dict[str, Any]:
    """The OpenAPI request body: one event or a batch of at most ``max_events``."""
    schema = TypeAdapter(PlayEventV1 | PlayEventBatch).json_schema(
        ref_template="#/components/schemas/{model}"
    )
    defs = schema.pop("$defs", {})
    defs["PlayEventBatch"]["properties"]["events"]["maxItems"] = max_events
    return {"schema": schema, "components": defs}


def parse_playback_events(
    body: bytes,
    max_events: int,
    arrival: datetime | None = None,
    bounds: EventsSettings | None = None,
) -> list[PlayEventV1]:
    """Validate a request body holding one v1 event or ``{"events": [...]}`` that arrived
    at ``arrival`` (default: now), with the contract's time ``bounds`` (default: defaults).

    Raises:
        EventValidationError: the body is not JSON, or items break the contract; every bad
            item is named by index, field and reason.
        PayloadTooLargeError: the batch holds more than ``max_events`` events.
    """
    arrival = arrival or datetime.now(UTC)
    bounds = bounds or EventsSettings()
    # Fast path: a well-formed batch is parsed and validated in one pass in Rust, then its
    # times are checked against the arrival. Anything else falls through to the slower path
    # below, which exists to name what is wrong.
    try:
        batch = PlayEventBatch.model_validate_json(body, strict=True)
    except ValidationError:
        pass
    else:
        if len(batch.events) > max_events:
            raise PayloadTooLargeError(_too_many(len(batch.events), max_events))
        problems = time_bound_problems(batch.events, arrival, bounds)
        problems += duplicate_id_problems(batch.events)
        if problems:
            raise _named_items(problems, batch_size=len(batch.events))
        return batch.events

    try:
        payload = pydantic_core.from_json(body)
    except ValueError as error:
        raise EventValidationError(
            "the request body is not valid JSON",
            [{"index": None, "field": "(body)", "reason": str(error), "type": "json_invalid"}],
        ) from error

    if isinstance(payload, dict) and "events" in payload:
        events = payload["events"]
        extra = sorted(set(payload) - {"events"})
        if extra:
            raise EventValidationError(
                f"unknown batch field(s) {extra}; a batch holds only 'events'",
                [
                    {"index": None, "field": name, "reason": "extra inputs are not permitted"}
                    for name in extra
                ],
            )
        if not isinstance(events, list) or not events:
            raise EventValidationError(
                "'events' must be a non-empty list of play events",
                [{"index": None, "field": "events", "reason": "expected a non-empty list"}],
            )
        if len(events) > max_events:
            raise PayloadTooLargeError(_too_many(len(events), max_events))
        try:
            # back to JSON so the checks are exactly the fast path's (strict JSON mode)
            valid = validate_play_events_json(pydantic_core.to_json(events), arrival, bounds)
        except PlayEventInvalid as error:
            raise _named_items(error.problems, batch_size=len(events)) from None
        problems = duplicate_id_problems(valid)
        if problems:
            raise _named_items(problems, batch_size=len(events))
        return valid

    try:
        return [validate_play_event_json(body, arrival, bounds)]
    except PlayEventInvalid as error:
        raise _named_items(error.problems, batch_size=None) from None


def duplicate_id_problems(events: list[PlayEventV1]) -> list[dict]:
    """One problem per event whose ``event_id`` an earlier event of the batch carries.

    A batch is one client's record of distinct plays: a repeated id is a client bug (two
    plays would become one downstream, where events are de-duplicated by ``event_id``).
    """
    first: dict[object, int] = {}
    problems = []
    for i, event in enumerate(events):
        seen = first.setdefault(event.event_id, i)
        if seen != i:
            problems.append(
                {
                    "index": i,
                    "field": "event_id",
                    "reason": f"event_id {event.event_id} is also at index {seen}; "
                    "each event of a batch needs its own event_id",
                    "type": "duplicate_event_id",
                }
            )
    return problems


def encode_event(event: PlayEventV1) -> bytes:
    """The Kafka value of ``event``: identical to ``event.to_json_bytes()``, faster."""
    return event.__pydantic_serializer__.to_json(event)


def _too_many(count: int, max_events: int) -> str:
    return (
        f"a batch holds at most {max_events} events and this one has {count}; "
        "split it into smaller batches"
    )


def _named_items(problems: list[dict], batch_size: int | None) -> EventValidationError:
    if batch_size is None:
        message = "the event is invalid; it was not accepted"
    else:
        bad = len({item["index"] for item in problems})
        message = (
            f"{bad} of {batch_size} events are invalid; nothing from this request was accepted"
        )
    return EventValidationError(message, problems)
