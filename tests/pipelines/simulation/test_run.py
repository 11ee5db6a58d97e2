"""``run_simulation``'s options (no services; the runs themselves are in test_sending)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from encore.errors import ConfigurationError
from encore.events import PlayEventV1, time_bound_problems
from encore.settings import EventsSettings
from pipelines.simulation import SimulationConfig, SimulationOptions, Target, generate_events
from pipelines.simulation.run import default_start
from tests.pipelines.simulation.catalogs import synthetic_catalog


@pytest.mark.parametrize(
    "bad",
    [{"duplicates": 1.5}, {"malformed": -0.1}, {"batch_size": 0}, {"concurrency": 0}],
)
def test_options_out_of_range_are_refused_before_anything_runs(bad: dict) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(bad))):
        SimulationOptions(**bad)


def test_target_may_be_named_by_its_string() -> None:
    assert SimulationOptions(target="kafka").target is Target.kafka
    with pytest.raises(ConfigurationError, match="'carrier-pigeon'; known: api, kafka"):
        SimulationOptions(target="carrier-pigeon")


@pytest.mark.parametrize("duration", [timedelta(minutes=15), timedelta(hours=1), timedelta(days=2)])
@pytest.mark.parametrize("now", [None, datetime(2027, 3, 1, 9, 41, 7, tzinfo=UTC)])
def test_default_start_keeps_every_event_inside_the_contract_horizon(
    duration: timedelta, now: datetime | None
) -> None:
    arrival = now or datetime.now(UTC)
    start = default_start(duration, now)
    assert start == start.replace(minute=0, second=0, microsecond=0)
    assert arrival - duration - timedelta(hours=1) < start <= arrival - duration
    # enough listeners that a 15-minute window at a quiet hour still has late plays: at 500,
    # 1 start hour in 24 had none in its second half (the wall-clock case failed in CI)
    config = SimulationConfig(seed=3, start=start, duration=duration, users=2000)
    events = [
        PlayEventV1.model_validate(e)
        for e in generate_events(config, synthetic_catalog(artists=50))
    ]
    assert events and max(e.start_time for e in events) >= start + duration / 2
    assert time_bound_problems(events, arrival, EventsSettings()) == []


def test_simulate_help_names_the_default_start_and_how_to_reproduce() -> None:
    from typer.testing import CliRunner

    from encore.cli import app

    result = CliRunner().invoke(app, ["simulate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "2026-11-23" not in result.output
    assert "minus --duration" in result.output and "reproducible" in result.output
