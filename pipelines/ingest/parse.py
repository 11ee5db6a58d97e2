"""Parse and validate one Kafka record of ``play-events`` against the v1 contract.

Pure functions, no Flink: the ingestion job calls :func:`parse_record` from a Python UDF, and
the unit tests call it directly in the core environment. Validation is
:func:`encore.events.validate_play_event_json`, the function the API validates with (strict
JSON types, time bounds), so a record the API would refuse is rejected here too, and nothing
the API accepts is rejected. ``arrival`` is the Kafka record timestamp (set by the broker),
never the time of processing: a record replayed after a crash is judged as the first time.

Output: a :data:`ParsedRecord` tuple, either the event's bronze columns with ``reason=None``,
or all-``None`` columns with the rejection ``reason`` and the raw payload (UTF-8, lossy).
The columns are derived from the bronze table in the registry (``encore.tables.PLAY_EVENTS``),
minus the ones the Kafka source adds (partition, offset) and the sink stamps (``ingested_at``);
timestamps travel as epoch microseconds (cheap through Flink; the sink's Arrow cast restores
them). Adding an optional event field is an edit to the event model and the registry only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple

from encore.events import PlayEventInvalid, PlayEventV1, validate_play_event_json
from encore.settings import EventsSettings
from encore.tables import PLAY_EVENTS

# A reason is read by people and stored per rejected row: long enough to name every bad
# field, short enough that a megabyte of garbage does not produce a megabyte of reason.
MAX_REASON_CHARS = 1000
# Raw payloads are kept whole up to this size; larger ones are truncated (and say so).
MAX_RAW_CHARS = 64 * 1024

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SOURCE_COLUMNS = ("kafka_partition", "kafka_offset")
"""Bronze columns the Kafka source's metadata provides."""
SINK_COLUMNS = ("ingested_at",)
"""Bronze columns the sink stamps when it writes."""
# Flink SQL type of each registry type as the job carries it (timestamps: epoch µs)
_SQL_TYPES = {
    "string": "STRING",
    "int": "INT",
    "long": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "BIGINT",
}
EVENT_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (c.name, _SQL_TYPES[c.dtype])
    for c in PLAY_EVENTS.columns
    if c.name not in SOURCE_COLUMNS + SINK_COLUMNS
)
"""The bronze columns the parse produces from the event, with their Flink SQL types."""
SOURCE_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (c.name, _SQL_TYPES[c.dtype]) for c in PLAY_EVENTS.columns if c.name in SOURCE_COLUMNS
)
"""The bronze columns the Kafka source provides, with their Flink SQL types."""
PARSED_FIELDS: tuple[tuple[str, str], ...] = (
    *EVENT_FIELDS,
    ("event_time_us", "BIGINT"),
    ("reason", "STRING"),
    ("raw_payload", "STRING"),
)
"""The UDF's result ROW: the event's bronze columns, then ``event_time_us`` (the time
trending counts by: ``min(start_time, arrival)``), the rejection ``reason`` (None for a valid
event) and the ``raw_payload`` (only for rejected records)."""

ParsedRecord = NamedTuple(  # the fields come from the registry
    "ParsedRecord", [(name, Any) for name, _ in PARSED_FIELDS]
)
_EVENT_NONES = (None,) * len(EVENT_FIELDS)


def epoch_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _derived(event: PlayEventV1) -> dict[str, Any]:
    """Bronze columns computed from the event rather than carried by it."""
    return {"event_date": event.start_time.date()}


# How each event field becomes its column value, decided once from the registry's types
# (this runs once per event in the job: a per-field isinstance chain cost as much as the
# validation itself)
_TIMESTAMP_FIELDS = frozenset(c.name for c in PLAY_EVENTS.columns if c.dtype == "timestamp") & {
    name for name, _ in EVENT_FIELDS
}
_DERIVED_FIELDS = frozenset({"event_date"})
_UUID_FIELDS = frozenset(
    name for name, field in PlayEventV1.model_fields.items() if field.annotation is uuid.UUID
)


def _column_getter(name: str):
    if name in _DERIVED_FIELDS:
        return lambda event, values: _derived(event)[name]
    if name in _TIMESTAMP_FIELDS:
        return lambda event, values: epoch_us(values[name])
    if name in _UUID_FIELDS:
        return lambda event, values: str(values[name])
    return lambda event, values: values.get(name)


_GETTERS = tuple(_column_getter(name) for name, _ in EVENT_FIELDS)


def event_columns(event: PlayEventV1) -> tuple:
    """The event's values in :data:`EVENT_FIELDS` order, as the job carries them."""
    values = event.__dict__  # the validated fields, read without model_dump()
    return tuple(getter(event, values) for getter in _GETTERS)


def _rejected(reason: str, payload: bytes | None) -> ParsedRecord:
    if payload is None:
        raw = ""
    else:
        raw = payload[:MAX_RAW_CHARS].decode("utf-8", errors="replace")
        if len(payload) > MAX_RAW_CHARS:
            raw += f"...[truncated, {len(payload)} bytes]"
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    return ParsedRecord(*_EVENT_NONES, None, reason, raw)


def parse_record(
    payload: bytes | None, arrival: datetime, bounds: EventsSettings | None = None
) -> ParsedRecord:
    """Validate one record value that arrived at ``arrival`` (the Kafka record timestamp);
    never raises (a bad record is data, not an error)."""
    if payload is None or not payload.strip():
        return _rejected("empty record value", payload)
    if arrival.tzinfo is None:
        arrival = arrival.replace(tzinfo=UTC)
    try:
        event = validate_play_event_json(payload, arrival, bounds or EventsSettings())
    except PlayEventInvalid as error:
        # bad JSON is a json_invalid problem: same path, readable reason
        return _rejected(error.reason(), payload)
    event_time = min(event.start_time, arrival)
    return ParsedRecord(*event_columns(event), epoch_us(event_time), None, None)
