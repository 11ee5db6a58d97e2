"""training.interactions from a hand-made silver.plays: counts, weights, the cut-off, unknown
songs left out, one partition per cut-off."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from encore.settings import Settings
from encore.tables import SILVER_PLAYS, TRAINING_INTERACTIONS
from pipelines.lake import training

from .conftest import read_rows, write_rows

pytestmark = [pytest.mark.spark]


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def play(
    event_id: str,
    user: str,
    song: str,
    start: datetime,
    event_type: str,
    completed: bool = False,
    skipped: bool = False,
    song_known: bool = True,
) -> dict:
    ms = 0 if event_type == "like" else (200_000 if completed else 10_000)
    return {
        "event_id": event_id,
        "user_id": user,
        "song_id": song,
        "start_time": start,
        "end_time": start + timedelta(milliseconds=ms),
        "ms_played": ms,
        "event_type": event_type,
        "device_type": "mobile",
        "country_code": "SE",
        "event_date": start.date(),
        "ingested_at": start,
        "song_known": song_known,
        "user_known": True,
        "completed": completed,
        "skipped": skipped,
        "local_hour": start.hour,
    }


SILVER = [
    play("e1", "u1", "s1", at(1, 10), "complete", completed=True),
    play("e2", "u1", "s1", at(1, 11), "skip", skipped=True),
    play("e3", "u1", "s1", at(2, 9), "play"),  # stopped early, no skip: partial
    play("e4", "u1", "s1", at(2, 9, 5), "like"),
    play("e5", "u1", "s1", at(2, 9, 6), "like"),  # a second like adds nothing
    # a skip after the completion threshold: completed, and a skip
    play("e6", "u1", "s2", at(2, 23, 59, 59), "skip", completed=True, skipped=True),
    play("e7", "u2", "s1", at(1, 8), "complete", completed=True),
    play("e8", "u2", "s-unknown", at(1, 8, 10), "complete", completed=True, song_known=False),
    play("e9", "u2", "s2", at(3, 0), "complete", completed=True),  # the next day's 00:00
]


def row(cutoff: int, user: str, song: str, counts: tuple, weight: float, first, last) -> dict:
    plays, completed, skips, likes = counts
    return {
        "cutoff_date": date(2026, 3, cutoff),
        "user_id": user,
        "song_id": song,
        "plays": plays,
        "completed": completed,
        "skips": skips,
        "likes": likes,
        "weight": pytest.approx(weight),
        "first_played_at": first,
        "last_played_at": last,
    }


def test_interactions_per_cutoff(spark, lake_settings: Settings) -> None:
    write_rows(lake_settings, SILVER_PLAYS, SILVER)

    (second,) = training.run(spark, lake_settings, date(2026, 3, 2))
    (third,) = training.run(spark, lake_settings, date(2026, 3, 3))

    # the 2nd: e9 starts at the cut-off itself, e8's song is unknown
    assert (second.table, second.rows_in, second.rows_out) == ("training.interactions", 8, 3)
    assert (third.rows_in, third.rows_out) == (9, 4)
    assert third.delta_version == second.delta_version + 1
    u1_s1 = ((3, 1, 1, 2), 1.0 + 0.1 + 0.5 + 2.0, at(1, 10), at(2, 9, 6))
    u1_s2 = ((1, 1, 1, 0), 1.0, at(2, 23, 59, 59), at(2, 23, 59, 59))
    u2_s1 = ((1, 1, 0, 0), 1.0, at(1, 8), at(1, 8))
    expected = [
        row(2, "u1", "s1", *u1_s1),
        row(2, "u1", "s2", *u1_s2),
        row(2, "u2", "s1", *u2_s1),
        row(3, "u1", "s1", *u1_s1),
        row(3, "u1", "s2", *u1_s2),
        row(3, "u2", "s1", *u2_s1),
        row(3, "u2", "s2", (1, 1, 0, 0), 1.0, at(3, 0), at(3, 0)),
    ]
    assert read_rows(lake_settings, TRAINING_INTERACTIONS) == expected
