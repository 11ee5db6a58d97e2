"""Simulated listening shared by the event benchmarks (bench_api, bench_ingest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from encore.settings import CatalogSettings
from pipelines.simulation import Catalog, SimulationConfig, generate_events
from streaming_api.catalog.synthetic import synthetic_songs


def simulated_events(count: int, *, seed: int, days: int) -> list[dict]:
    """``count`` valid v1 records from 20,000 simulated listeners over ``days`` days.

    The span ends an hour before now: the contract refuses events older than
    ``events.max_event_age_s`` (30 days) or later than arrival + the clock skew, so a fixed
    date would stop being valid. The same seed gives the same listening, shifted in time.
    """
    last_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    config = SimulationConfig(
        seed=seed,
        users=20_000,
        start=last_hour - timedelta(days=days, hours=1),
        duration=timedelta(days=days),
        max_events=count,
    )
    # the default catalog `encore catalog load` makes, in memory: these benchmarks run no
    # PostgreSQL, and the events only need real-looking song ids and durations
    defaults = CatalogSettings()
    catalog = Catalog.from_records(
        synthetic_songs(defaults.artists, defaults.songs_per_artist, defaults.seed)
    )
    events = list(generate_events(config, catalog=catalog))
    if len(events) < count:
        raise SystemExit(f"the simulation gave {len(events)} events, fewer than {count}")
    return events
