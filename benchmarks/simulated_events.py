"""Simulated listening shared by the event benchmarks (bench_api, bench_ingest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.simulation import SimulationConfig, generate_events


def simulated_events(count: int, *, seed: int, days: int) -> list[dict]:
    """``count`` valid v1 records from 20,000 simulated listeners over ``days`` days."""
    config = SimulationConfig(
        seed=seed,
        users=20_000,
        start=datetime(2026, 11, 23, 17, 0, tzinfo=UTC),
        duration=timedelta(days=days),
        max_events=count,
    )
    events = list(generate_events(config))
    if len(events) < count:
        raise SystemExit(f"the simulation gave {len(events)} events, fewer than {count}")
    return events
