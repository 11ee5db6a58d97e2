"""Parse and validate one Kafka record of ``play-events`` against the v1 contract.

Pure functions, no Flink: the ingestion job calls :func:`parse_record` from a Python UDF, and
the unit tests call it directly in the core environment. Validation is exactly
:class:`encore.events.PlayEventV1` (the same model the API validates with), so a record the
API would refuse is rejected here too, and nothing the API accepts is rejected.

Output: a :data:`ParsedRecord` tuple, either the event's bronze columns with ``reason=None``,
or all-``None`` columns with the rejection ``reason`` and the raw payload (UTF-8, lossy).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import NamedTuple

from pydantic import ValidationError

from encore.events import PlayEventV1

# A reason is read by people and stored per rejected row: long enough to name every bad
# field, short enough that a megabyte of garbage does not produce a megabyte of reason.
MAX_REASON_CHARS = 1000
# Raw payloads are kept whole up to this size; larger ones are truncated (and say so).
MAX_RAW_CHARS = 64 * 1024

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ParsedRecord(NamedTuple):
    """One record after validation; field order is the UDF's result ROW type."""

    event_id: str | None
    user_id: str | None
    song_id: str | None
    start_us: int | None
    """``start_time`` as microseconds since the Unix epoch (UTC)."""
    end_us: int | None
    ms_played: int | None
    event_type: str | None
    device_type: str | None
    country_code: str | None
    schema_version: int | None
    event_date: date | None
    reason: str | None
    """None for a valid event; why it was rejected otherwise."""
    raw_payload: str | None
    """The record value as text, only for rejected records."""


def epoch_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def describe_validation_error(error: ValidationError) -> str:
    """``field: message`` for every problem, e.g. ``country_code: String should match ...``."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "event"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)


def _rejected(reason: str, payload: bytes | None) -> ParsedRecord:
    if payload is None:
        raw = ""
    else:
        raw = payload[:MAX_RAW_CHARS].decode("utf-8", errors="replace")
        if len(payload) > MAX_RAW_CHARS:
            raw += f"...[truncated, {len(payload)} bytes]"
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    return ParsedRecord(*([None] * 11), reason, raw)


def parse_record(payload: bytes | None) -> ParsedRecord:
    """Validate one record value; never raises (a bad record is data, not an error)."""
    if payload is None or not payload.strip():
        return _rejected("empty record value", payload)
    try:
        event = PlayEventV1.model_validate_json(payload)
    except ValidationError as error:
        # pydantic reports bad JSON as a json_invalid error: same path, readable reason
        return _rejected(describe_validation_error(error), payload)
    start: datetime = event.start_time
    return ParsedRecord(
        event_id=str(event.event_id),
        user_id=event.user_id,
        song_id=event.song_id,
        start_us=epoch_us(start),
        end_us=epoch_us(event.end_time),
        ms_played=event.ms_played,
        event_type=str(event.event_type),
        device_type=str(event.device_type),
        country_code=event.country_code,
        schema_version=event.schema_version,
        event_date=start.date(),
        reason=None,
        raw_payload=None,
    )
