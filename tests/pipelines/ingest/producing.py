"""Test data for the ingestion tests: valid v1 events, duplicates and malformed records."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone

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
    retry), placed later in the stream. The events start an hour before the call: the job
    checks start_time against each record's arrival on Kafka (now).
    """
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    events = valid_events(n_valid, seed, start=start)
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


def _record(now: datetime, **overrides: object) -> dict:
    """A valid v1 record as JSON types, starting a minute before ``now``."""
    start = now - timedelta(minutes=1)
    record = {
        "event_id": str(uuid.uuid4()),
        "user_id": "strict-user",
        "song_id": "strict-song",
        "start_time": start.isoformat().replace("+00:00", "Z"),
        "end_time": (start + timedelta(seconds=50)).isoformat().replace("+00:00", "Z"),
        "ms_played": 45_000,
        "event_type": "play",
        "device_type": "mobile",
        "country_code": "SE",
    }
    record.update(overrides)
    return record


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def bad_corpus(now: datetime) -> list[tuple[str, bytes, str]]:
    """(case, JSON value, the field its rejection names) for records arriving at ``now``.

    Every one must be refused by the API (422 naming ``field``) and by the job's parse
    (a reason naming ``field``): the same contract, the same strictness.
    """
    future = datetime(2099, 1, 1, tzinfo=UTC)
    old = now - timedelta(days=31)
    cases: list[tuple[str, dict, str]] = [
        ("string-typed number", _record(now, ms_played="45000"), "ms_played"),
        ("bool for int", _record(now, ms_played=True), "ms_played"),
        ("float for int", _record(now, ms_played=45000.5), "ms_played"),
        ("number-typed time", _record(now, start_time=int(now.timestamp()) - 60), "start_time"),
        (
            "naive time",
            _record(now, start_time=_iso(now - timedelta(minutes=1))[:-1]),
            "start_time",
        ),
        (
            "far future",
            _record(now, start_time=_iso(future), end_time=_iso(future + timedelta(minutes=1))),
            "start_time",
        ),
        (
            "past the clock skew",
            _record(
                now,
                start_time=_iso(now + timedelta(minutes=6)),
                end_time=_iso(now + timedelta(minutes=7)),
            ),
            "start_time",
        ),
        (
            "too old",
            _record(now, start_time=_iso(old), end_time=_iso(old + timedelta(minutes=1))),
            "start_time",
        ),
        ("end before start", _record(now, end_time=_iso(now - timedelta(minutes=2))), "(event)"),
        ("ms_played over the wall time", _record(now, ms_played=120_000), "(event)"),
        ("negative ms_played", _record(now, ms_played=-1), "ms_played"),
        ("unknown field", _record(now, mood="happy"), "mood"),
        ("bad country pattern", _record(now, country_code="usa"), "country_code"),
        ("bad uuid", _record(now, event_id="not-a-uuid"), "event_id"),
        ("unknown event type", _record(now, event_type="pause"), "event_type"),
        ("string schema version", _record(now, schema_version="1"), "schema_version"),
        ("bad id characters", _record(now, user_id="ada lovelace"), "user_id"),
        ("missing field", {k: v for k, v in _record(now).items() if k != "song_id"}, "song_id"),
        # user-assigned and unassigned ISO 3166-1 codes: the right shape, no country
        *(
            (f"unassigned country {code}", _record(now, country_code=code), "country_code")
            for code in ("ZZ", "XX", "AA", "QM")
        ),
        # a valid ISO time whose UTC is past year 9999 (OverflowError, once a 500)
        ("end_time overflows UTC", _record(now, end_time="9999-12-31T23:59:59-05:00"), "end_time"),
        ("year 1 start", _record(now, start_time="0001-01-01T00:00:00Z"), "start_time"),
        ("year 9999 end", _record(now, end_time="9999-12-31T23:59:59Z"), "end_time"),
    ]
    return [(case, json.dumps(record).encode(), field) for case, record, field in cases]


def good_corpus(now: datetime) -> list[tuple[str, bytes]]:
    """(case, JSON value) records arriving at ``now`` that both the API and the job accept."""
    skewed = now + timedelta(minutes=4)
    old = now - timedelta(days=29)
    cases = [
        ("plain", _record(now)),
        (
            "offset time",
            _record(
                now,
                start_time=(now - timedelta(minutes=1))
                .astimezone(timezone(timedelta(hours=-3)))
                .isoformat(),
            ),
        ),
        (
            "in-skew future",
            _record(now, start_time=_iso(skewed), end_time=_iso(skewed + timedelta(seconds=50))),
        ),
        (
            "29 days old",
            _record(now, start_time=_iso(old), end_time=_iso(old + timedelta(minutes=1))),
        ),
        ("zero ms_played, like", _record(now, ms_played=0, event_type="like")),
        ("explicit schema version", _record(now, schema_version=1, device_type="car")),
    ]
    return [(case, json.dumps(record).encode()) for case, record in cases]
