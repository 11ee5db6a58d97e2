"""``encore features materialize``'s time options, parsed before any settings or store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import typer
from typer.testing import CliRunner

from encore.cli import app
from features.cli import parse_time


def test_a_time_that_is_not_iso_names_the_option_and_the_format() -> None:
    result = CliRunner().invoke(
        app, ["features", "materialize", "--end", "notatime"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2, result.output  # a usage error: nothing was materialised
    assert "--end" in result.output
    assert "ISO-8601" in result.output and "'notatime'" in result.output


def test_times_are_utc_unless_they_name_a_zone() -> None:
    assert parse_time("2026-04-02") == datetime(2026, 4, 2, tzinfo=UTC)
    assert parse_time("2026-04-02T06:30") == datetime(2026, 4, 2, 6, 30, tzinfo=UTC)
    one_hour_east = timezone(timedelta(hours=1))
    assert parse_time("2026-04-02T06:30+01:00") == datetime(2026, 4, 2, 6, 30, tzinfo=one_hour_east)
    assert parse_time(None) is None
    with pytest.raises(typer.BadParameter, match="ISO-8601"):
        parse_time("yesterday")
