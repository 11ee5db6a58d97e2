"""``run_simulation``'s options (no services; the runs themselves are in test_sending)."""

from __future__ import annotations

import pytest

from encore.errors import ConfigurationError
from pipelines.simulation import SimulationOptions, Target


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
