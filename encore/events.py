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
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    country_code: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")

    @field_validator("start_time", "end_time")
    @classmethod
    def _timezone_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a timezone offset, e.g. 2026-11-23T20:11:09Z")
        return value.astimezone(UTC)

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
