"""Faults a flaky client and a buggy one would add: re-sent duplicates, malformed records.

Input: any stream of valid v1 records (``generate_events``). Output: the same stream with
faults mixed in, deterministic for a seed, and ``FaultStats`` counting what was added.
"""

from __future__ import annotations

import heapq
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from encore.errors import ConfigurationError


@dataclass
class FaultStats:
    """What ``inject_faults`` did: valid records passed, duplicates and malformed added."""

    valid: int = 0
    duplicates: int = 0
    malformed: int = 0
    malformed_kinds: Counter[str] = field(default_factory=Counter)


def _truncated_json(record: dict, rng: random.Random) -> bytes:
    text = json.dumps(record, separators=(",", ":")).encode()
    return text[: rng.randint(1, len(text) - 2)]


def _without_field(record: dict, rng: random.Random) -> dict:
    record.pop(rng.choice(["user_id", "song_id", "start_time", "event_type", "ms_played"]))
    return record


MALFORMED_KINDS: dict[str, Callable[[dict, random.Random], bytes | dict]] = {
    "invalid_json": _truncated_json,
    "missing_field": _without_field,
    "bad_enum": lambda r, rng: {**r, "event_type": rng.choice(["pause", "PLAY", "stop"])},
    "bad_device": lambda r, rng: {**r, "device_type": "fridge"},
    "negative_ms_played": lambda r, rng: {**r, "ms_played": -rng.randint(1, 100_000)},
    "unknown_field": lambda r, rng: {**r, "mood": "happy"},
    "wrong_type": lambda r, rng: {**r, "ms_played": "lots"},
    "naive_time": lambda r, rng: {**r, "start_time": r["start_time"].rstrip("Z")},
    "end_before_start": lambda r, rng: {**r, "end_time": "2000-01-01T00:00:00Z", "ms_played": 0},
    "bad_country": lambda r, rng: {**r, "country_code": "Sweden"},
}


def inject_faults(
    records: Iterable[dict],
    duplicates: float = 0.0,
    malformed: float = 0.0,
    seed: int = 0,
    stats: FaultStats | None = None,
) -> Iterator[bytes | dict]:
    """``records`` with faults mixed in, as a flaky client and a buggy one would send them.

    Every input record is passed through once. In addition, each one is re-sent later
    (same dict, same ``event_id``, 1 to 100 records afterwards, as a client retry would)
    with probability ``duplicates``, and followed by a malformed record with probability
    ``malformed``. Malformed records carry a fresh ``event_id`` (so they never collide with a
    valid one) and are either ``bytes`` that are not JSON or dicts that break the v1 contract
    in one way (``MALFORMED_KINDS``). Counts go to ``stats`` if given.
    """
    if not (0 <= duplicates <= 1 and 0 <= malformed <= 1):
        raise ConfigurationError(
            f"fractions must be within [0, 1], got duplicates={duplicates} malformed={malformed}"
        )
    stats = stats if stats is not None else FaultStats()
    rng = random.Random(f"{seed}/faults")
    kinds = list(MALFORMED_KINDS)
    pending: list[tuple[int, int, dict]] = []  # (due position, tie-breaker, record)
    for position, record in enumerate(records, start=1):
        while pending and pending[0][0] < position:
            stats.duplicates += 1
            yield heapq.heappop(pending)[2]
        stats.valid += 1
        yield record
        if duplicates and rng.random() < duplicates:
            heapq.heappush(pending, (position + rng.randint(1, 100), position, record))
        if malformed and rng.random() < malformed:
            kind = rng.choice(kinds)
            broken = dict(record, event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            stats.malformed += 1
            stats.malformed_kinds[kind] += 1
            yield MALFORMED_KINDS[kind](broken, rng)
    while pending:
        stats.duplicates += 1
        yield heapq.heappop(pending)[2]
