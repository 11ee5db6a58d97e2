"""The play event contract: what the app posts, Kafka carries and bronze stores.

Versioning rule
---------------
``schema_version`` is part of every event. Within a major version changes are additive only:
a new *optional* field may be added (readers ignore what they do not know when reading from
bronze, but the API still rejects unknown fields so clients learn of typos at once). Removing
or renaming a field, changing a type, or narrowing allowed values makes a new major version
(``PlayEventV2``), carried on the same topic with ``schema_version=2``; consumers keep
accepting every version they have shipped with until producers have moved, and bronze keeps
one table per major version only if the shapes cannot be merged by adding nullable columns.

Added within v1 (optional, so compatible): ``variant``, the A/B variant (model alias) that
recommended the song; bronze and ``silver.plays`` carry it as a nullable column, null for
events without one. Left out of the JSON when unset, so such events keep their old bytes.

Validation
----------
The API and the ingestion job validate with the same functions here, in pydantic's strict
JSON mode: a JSON value of the wrong type (``"180000"`` for ``ms_played``, a number for a
time, ``true`` for an int) is rejected, never coerced. On top of the model, the *time
bounds* tie ``start_time`` to the record's arrival (settings ``events.max_clock_skew_s``,
``events.max_event_age_s``): no later than arrival + skew, no earlier than arrival - the
age horizon. Arrival is the request time at the API and the Kafka record timestamp (set by
the broker, ``LogAppendTime``) in the job, so a replayed record is judged exactly as the
first time. The live topic carries live plays only: older history goes through an import
path, not ``play-events``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from encore.countries import ASSIGNED_COUNTRY_CODES
from encore.errors import ContractError

if TYPE_CHECKING:
    from encore.settings import EventsSettings

SCHEMA_VERSION = 1


class EventType(StrEnum):
    PLAY = "play"
    SKIP = "skip"
    COMPLETE = "complete"
    LIKE = "like"


class DeviceType(StrEnum):
    MOBILE = "mobile"
    DESKTOP = "desktop"
    WEB = "web"
    TABLET = "tablet"
    SMART_SPEAKER = "smart_speaker"
    TV = "tv"
    CAR = "car"
    OTHER = "other"


# The longest single play Encore accepts: a DJ mix or an audiobook chapter, not a day-long
# stream left running by mistake.
MAX_MS_PLAYED = 6 * 60 * 60 * 1000

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")]
# An A/B variant is a model alias (``champion``, ``challenger``): MLflow's alias charset, short
VARIANT_MAX_CHARS = 32
VARIANT_PATTERN = r"^[A-Za-z0-9_\-]+$"
Variant = Annotated[str, Field(min_length=1, max_length=VARIANT_MAX_CHARS, pattern=VARIANT_PATTERN)]


class PlayEventV1(BaseModel):
    """One listener action on one song, version 1.

    ``start_time``/``end_time`` are timezone-aware (naive datetimes are rejected, since a
    listener's local midnight is not the lake's). ``ms_played`` may be shorter than the wall
    time between them (pauses) but never longer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    schema_version: Literal[1] = 1
    event_id: uuid.UUID
    user_id: Id
    song_id: Id
    start_time: datetime
    end_time: datetime
    ms_played: int = Field(ge=0, le=MAX_MS_PLAYED)
    event_type: EventType
    device_type: DeviceType
    country_code: str = Field(
        pattern=r"^[A-Z]{2}$",
        description="An assigned ISO 3166-1 alpha-2 code",
        json_schema_extra={"enum": sorted(ASSIGNED_COUNTRY_CODES)},
    )
    # Added within v1 (optional, the versioning rule's compatible change). Left out of the
    # JSON when unset, so an event without a variant is byte for byte what it was before.
    variant: Variant | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description=(
            "The A/B variant (model alias) that recommended this song, as the recommendation "
            "service returned it; absent or null when the play did not come from one"
        ),
    )

    @field_validator("start_time", "end_time")
    @classmethod
    def _timezone_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a timezone offset, e.g. 2026-11-23T20:11:09Z")
        try:
            return value.astimezone(UTC)
        except OverflowError:
            # 9999-12-31T23:59:59-05:00 is a valid ISO time whose UTC is past year 9999
            raise ValueError(
                f"{value.isoformat()} is out of range: in UTC it falls outside years 1-9999"
            ) from None

    @field_validator("country_code")
    @classmethod
    def _assigned_country(cls, value: str) -> str:
        if value not in ASSIGNED_COUNTRY_CODES:
            raise ValueError(f"{value!r} is not an assigned ISO 3166-1 alpha-2 country code")
        return value

    @model_validator(mode="after")
    def _consistent_times(self) -> PlayEventV1:
        if self.end_time < self.start_time:
            raise ValueError("end_time is before start_time")
        wall_ms = (self.end_time - self.start_time).total_seconds() * 1000
        # one second of slack for clients that round their clocks
        if self.ms_played > wall_ms + 1000:
            raise ValueError(
                f"ms_played={self.ms_played} exceeds the {int(wall_ms)} ms between "
                "start_time and end_time"
            )
        return self

    def to_record(self) -> dict:
        """The flat, JSON-ready form carried on Kafka (times as ISO-8601 UTC strings)."""
        return self.model_dump(mode="json")

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.to_record(), separators=(",", ":")).encode()


PlayEvent = PlayEventV1


def play_event_json_schema() -> dict:
    """The JSON Schema of the current play event version, as published to clients."""
    schema = PlayEventV1.model_json_schema()
    schema["$id"] = "https://encore.dev/schemas/play-event/v1.json"
    return schema


class PlayEventInvalid(ContractError):
    """Events that break the v1 contract; ``problems`` names each one.

    Each problem is ``{"index": int | None, "field": str, "reason": str, "type": str}``:
    ``index`` is the position in a batch (``None`` for a single event), ``field`` the dotted
    field path (``(event)`` for a rule over several fields, whose reason names them).
    """

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        super().__init__(message)

    def reason(self) -> str:
        """``field: reason`` for every problem, ``; ``-separated (the job's rejected row)."""
        return "; ".join(f"{p['field']}: {p['reason']}" for p in self.problems)


_EVENT_LIST = TypeAdapter(list[PlayEventV1])


def problems_from(error: ValidationError, batch: bool) -> list[dict[str, Any]]:
    """pydantic's errors as contract problems (``index`` popped from the location in a batch)."""
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        loc = list(detail["loc"])
        index = loc.pop(0) if batch and loc and isinstance(loc[0], int) else None
        problems.append(
            {
                "index": index,
                "field": ".".join(str(part) for part in loc) or "(event)",
                "reason": detail["msg"],
                "type": detail["type"],
            }
        )
    return problems


def time_bound_problems(
    events: Sequence[PlayEventV1], arrival: datetime, bounds: EventsSettings, batch: bool = True
) -> list[dict[str, Any]]:
    """The time-bound problems of already validated events (cheap: three comparisons each).

    ``start_time`` must lie in ``[arrival - max_event_age_s, arrival + max_clock_skew_s]``,
    and ``end_time`` no later than ``arrival + max_clock_skew_s`` (a play is reported once it
    has ended).
    """
    latest = arrival + timedelta(seconds=bounds.max_clock_skew_s)
    earliest = arrival - timedelta(seconds=bounds.max_event_age_s)
    problems = []
    for i, event in enumerate(events):
        start = event.start_time
        field = "start_time"
        if start > latest:
            reason = (
                f"start_time {start.isoformat()} is more than {bounds.max_clock_skew_s} s "
                f"after its arrival {arrival.isoformat()} (events.max_clock_skew_s)"
            )
        elif start < earliest:
            reason = (
                f"start_time {start.isoformat()} is more than {bounds.max_event_age_s} s "
                f"before its arrival {arrival.isoformat()} (events.max_event_age_s), "
                "older history is imported, not sent live"
            )
        elif event.end_time > latest:
            field = "end_time"
            reason = (
                f"end_time {event.end_time.isoformat()} is more than "
                f"{bounds.max_clock_skew_s} s after its arrival {arrival.isoformat()} "
                "(events.max_clock_skew_s)"
            )
        else:
            continue
        problems.append(
            {
                "index": i if batch else None,
                "field": field,
                "reason": reason,
                "type": "time_bound",
            }
        )
    return problems


def validate_play_event_json(
    raw: bytes | str, arrival: datetime, bounds: EventsSettings
) -> PlayEventV1:
    """One v1 event from JSON, strict types and time bounds; what the API and the job accept.

    Raises:
        PlayEventInvalid: naming every problem (bad JSON, types, values, time bounds).
    """
    try:
        event = PlayEventV1.model_validate_json(raw, strict=True)
    except ValidationError as error:
        raise PlayEventInvalid("the event is invalid", problems_from(error, batch=False)) from None
    problems = time_bound_problems([event], arrival, bounds, batch=False)
    if problems:
        raise PlayEventInvalid("the event is invalid", problems)
    return event


def validate_play_events_json(
    raw_array: bytes | str, arrival: datetime, bounds: EventsSettings
) -> list[PlayEventV1]:
    """A JSON array of v1 events, all or nothing: the batch form of
    :func:`validate_play_event_json` (same checks; problems carry the item's ``index``)."""
    try:
        events = _EVENT_LIST.validate_json(raw_array, strict=True)
    except ValidationError as error:
        problems = problems_from(error, batch=True)
    else:
        problems = time_bound_problems(events, arrival, bounds)
        if not problems:
            return events
    raise PlayEventInvalid(f"{len({p['index'] for p in problems})} events are invalid", problems)
