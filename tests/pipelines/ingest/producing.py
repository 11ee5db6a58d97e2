"""Test data for the ingestion tests: valid v1 events, duplicates and malformed records."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

from encore.events import PlayEventV1

COUNTRIES = ["US", "GB", "DE", "FR", "BR", "SE", "JP", "IN"]
MALFORMED_KINDS = ("not json", "unknown field", "naive time", "bad country", "too long", "empty")


def valid_events(n: int, seed: int = 7, start: datetime | None = None) -> list[PlayEventV1]:
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    events = []
    for i in range(n):
        begin = start + timedelta(milliseconds=i * 50)
        length = rng.randint(5_000, 240_000)
        events.append(
            PlayEventV1(
                event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                user_id=f"user-{rng.randint(1, 500)}",
                song_id=f"song-{min(int(rng.paretovariate(1.2)), 2000)}",
                start_time=begin,
                end_time=begin + timedelta(milliseconds=length),
                ms_played=rng.randint(0, length),
                event_type=rng.choice(["play", "skip", "complete", "like"]),
                device_type=rng.choice(["mobile", "desktop", "web"]),
                country_code=rng.choice(COUNTRIES),
            )
        )
    return events


def malformed_record(i: int, rng: random.Random) -> tuple[bytes, str]:
    """A bad record and a fragment its rejection reason must contain."""
    base = valid_events(1, seed=rng.getrandbits(32))[0].to_record()
    kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
    if kind == "not json":
        return b'{"event_id": "' + str(i).encode() + b'", oops', "Invalid JSON"
    if kind == "unknown field":
        base["colour"] = "blue"
        return json.dumps(base).encode(), "colour: Extra inputs are not permitted"
    if kind == "naive time":
        base["start_time"] = base["start_time"].replace("Z", "")
        return json.dumps(base).encode(), "start_time"
    if kind == "bad country":
        base["country_code"] = "usa"
        return json.dumps(base).encode(), "country_code"
    if kind == "too long":
        base["ms_played"] = 10**9
        return json.dumps(base).encode(), "ms_played"
    return b"", "empty record value"


def mixed_records(
    n_valid: int, n_duplicates: int, n_malformed: int, seed: int = 7
) -> tuple[list[tuple[str, bytes]], set[str], list[str]]:
    """(key, value) records in send order, the unique valid event ids, expected reasons.

    Duplicates are byte-identical copies with the same key (a client resend or a producer
    retry), placed later in the stream.
    """
    rng = random.Random(seed)
    events = valid_events(n_valid, seed)
    records: list[tuple[str, bytes]] = [(e.user_id, e.to_json_bytes()) for e in events]
    for _ in range(n_duplicates):
        position = rng.randrange(len(records))
        original = events[rng.randrange(len(events))]
        records.insert(position, (original.user_id, original.to_json_bytes()))
    reasons = []
    for i in range(n_malformed):
        value, reason = malformed_record(i, rng)
        records.insert(rng.randrange(len(records)), (f"user-{i}", value))
        reasons.append(reason)
    return records, {str(e.event_id) for e in events}, reasons
