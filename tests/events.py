"""A valid v1 play event as JSON-ready dict, for tests that vary one field at a time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta


def play_event(start: datetime | None = None, **overrides: object) -> dict:
    """A complete three-minute play by ``u1`` of ``s1`` in Sweden, ``overrides`` applied.

    ``start`` defaults to ten minutes ago: inside the contract's time bounds on any date.
    """
    start = start or datetime.now(UTC) - timedelta(minutes=10)
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
