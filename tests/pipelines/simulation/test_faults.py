"""Fault injection: duplicates and malformed records in the asked fractions (no services)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from encore.errors import ConfigurationError
from encore.events import PlayEventInvalid, validate_play_event_json
from encore.settings import EventsSettings
from pipelines.simulation import FaultStats, SimulationConfig, generate_events, inject_faults
from pipelines.simulation.faults import MALFORMED_KINDS
from tests.pipelines.simulation.catalogs import synthetic_catalog

HOUR = SimulationConfig(seed=7, users=3000, duration=timedelta(hours=1))


@pytest.fixture(scope="module")
def hour() -> list[dict]:
    return list(generate_events(HOUR, synthetic_catalog(artists=500)))


def test_faults_come_in_the_asked_fractions(hour: list[dict]) -> None:
    stats = FaultStats()
    out = list(inject_faults(hour, duplicates=0.1, malformed=0.05, seed=1, stats=stats))
    n = len(hour)
    assert stats.valid == n and len(out) == n + stats.duplicates + stats.malformed
    assert 0.08 * n < stats.duplicates < 0.12 * n
    assert 0.035 * n < stats.malformed < 0.065 * n
    assert set(stats.malformed_kinds) == set(MALFORMED_KINDS)
    assert out == list(inject_faults(hour, duplicates=0.1, malformed=0.05, seed=1))

    # judged by the one validator the API and the job share, as if it arrived at the hour's
    # end (so the time bounds pass for every honest event)
    arrival, bounds = HOUR.start + HOUR.duration, EventsSettings()

    def judge(item: bytes | dict) -> None:
        raw = item if isinstance(item, bytes) else json.dumps(item).encode()
        validate_play_event_json(raw, arrival, bounds)

    valid_ids = Counter(e["event_id"] for e in hour)
    seen: Counter[str] = Counter()
    malformed = 0
    for item in out:
        if isinstance(item, dict) and item.get("event_id") in valid_ids and item in hour:
            judge(item)  # a valid event passes the strict contract
            seen[item["event_id"]] += 1
            continue
        malformed += 1
        with pytest.raises(PlayEventInvalid):
            judge(item)
    assert malformed == stats.malformed
    assert set(seen) == set(valid_ids)  # every valid event is sent at least once
    assert sum(seen.values()) - len(seen) == stats.duplicates
    assert all(count <= 2 for count in seen.values())


def test_no_faults_pass_records_through(hour: list[dict]) -> None:
    assert list(inject_faults(hour[:100])) == hour[:100]
    with pytest.raises(ConfigurationError):
        list(inject_faults(hour[:1], duplicates=1.5))
