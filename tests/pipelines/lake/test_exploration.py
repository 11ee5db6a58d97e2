"""Exploration helpers: a lake table as a frame (no services: delta-rs on a temp folder) and
the long-tail measures against values worked out by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from encore.errors import NotFoundError
from encore.settings import Settings
from encore.tables import COUNTRY_DEVICE_BREAKDOWN
from pipelines.lake.exploration import concentration, day_range, gini, lake_frame, top_share
from tests.pipelines.lake.conftest import write_rows


def breakdown(day: date, plays: int) -> dict:
    return {
        "day": day,
        "country_code": "SE",
        "device_type": "mobile",
        "plays": plays,
        "listeners": 1,
        "skips": 0,
        "ms_played": plays * 1000,
    }


def test_a_table_reads_as_a_frame_within_the_days_asked(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, lake={"root": str(tmp_path / "lake")})
    with pytest.raises(NotFoundError, match="encore lake build"):
        lake_frame(settings, COUNTRY_DEVICE_BREAKDOWN)
    rows = [breakdown(date(2026, 11, day), day) for day in range(1, 11)]
    write_rows(settings, COUNTRY_DEVICE_BREAKDOWN, rows)
    frame = lake_frame(
        settings, COUNTRY_DEVICE_BREAKDOWN, ["day", "plays"], day_range(date(2026, 11, 8), 3)
    )
    assert sorted(frame.rows()) == [(date(2026, 11, d), d) for d in (6, 7, 8)]
    with pytest.raises(ValueError, match="at least 1"):
        day_range(date(2026, 11, 8), 0)


def test_the_long_tail_measures() -> None:
    counts = [1, 0, 6, 3]  # sorted down: 6, 3, 1, 0 of 10
    curve = concentration(counts)
    assert curve["subjects_share"].to_list() == [0, 0.25, 0.5, 0.75, 1]
    assert curve["plays_share"].to_list() == pytest.approx([0, 0.6, 0.9, 1.0, 1.0])
    assert top_share(counts, 0.5) == pytest.approx(0.9)
    assert top_share(counts, 0.01) == pytest.approx(0.6)  # at least one subject
    # mean absolute difference over all ordered pairs / (2 * mean)
    pairs = sum(abs(a - b) for a in counts for b in counts)
    assert gini(counts) == pytest.approx(pairs / (2 * len(counts) ** 2 * (sum(counts) / 4)))
    assert gini([5, 5, 5]) == pytest.approx(0)
    for measure in (concentration, gini, lambda c: top_share(c, 0.2)):
        with pytest.raises(ValueError, match="positive count"):
            measure([0, 0])
