"""Data quality: each check type passes good rows and catches bad ones (with the failing
rows counted by hand and the example row named), examples carry pseudonyms, never user
ids, and a failing check stops the build before its table's day is written and before the
publish step runs, with every result in ops.quality_results under the build's run id."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from encore.checks import (
    Check,
    InRange,
    KnownTo,
    NotNull,
    OneOf,
    Reconciles,
    RowsEqualDistinct,
    Unique,
)
from encore.tables import (
    DAILY_SONG_PLAYS,
    DIM_SONGS,
    DIM_USERS,
    EVENT_TYPES,
    PLAY_EVENTS,
    SILVER_PLAYS,
    TRAINING_INTERACTIONS,
    Column,
    Table,
)
from pipelines.lake import audit, quality
from pipelines.lake.pseudonyms import listener_key
from pipelines.lake.writing import replace_day
from tests.pipelines.lake.conftest import read_rows, song_row, user_row, write_rows

pytestmark = [pytest.mark.spark]

DAY = date(2026, 11, 30)
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

GOOD = [
    # e-3 plays a song the catalog lacks: kept, flagged unknown
    {"event_id": "e-1", "user_id": "u-1", "song_id": "s-1", "event_type": "play",
     "ms_played": 40_000, "song_known": True},
    {"event_id": "e-2", "user_id": "u-2", "song_id": "s-2", "event_type": "skip",
     "ms_played": 5_000, "song_known": True},
    {"event_id": "e-3", "user_id": "u-1", "song_id": "s-9", "event_type": "complete",
     "ms_played": 180_000, "song_known": False},
]  # fmt: skip


def table_with(check: Check) -> Table:
    return Table(
        layer="silver",
        name="quality_test",
        writer="tests",
        partition_by=("event_date",),
        columns=(
            Column("event_id", "string"),
            Column("user_id", "string"),
            Column("song_id", "string"),
            Column("event_type", "string"),
            Column("ms_played", "long"),
            Column("song_known", "boolean"),
            Column("event_date", "date"),
        ),
        checks=(check,),
    )


def verdict(spark, settings, check: Check, rows: list[dict]) -> quality.CheckResult:
    table = table_with(check)
    frame = spark.createDataFrame(
        [{**row, "event_date": DAY} for row in rows], table.spark_schema()
    )
    [result] = quality.evaluate(spark, settings, table, frame, DAY)
    return result


def changed(which: str, **values: Any) -> list[dict]:
    """GOOD with the row of event id ``which`` changed."""
    return [{**r, **values} if r["event_id"] == which else r for r in GOOD]


def example_of(settings, which: str, **values: Any) -> dict:
    """The example a failing check should show: the row, its user id pseudonymised."""
    row = {**next(r for r in GOOD if r["event_id"] == which), **values}
    shown = {("listener_key" if k == "user_id" else k): v for k, v in row.items()}
    shown["listener_key"] = listener_key(settings, row["user_id"])
    return {**shown, "event_date": DAY.isoformat()}


def bronze_event(event_id: str, day: date, ms_played: int) -> dict:
    start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    return {
        "event_id": event_id, "user_id": "u-1", "song_id": "s-1", "start_time": start,
        "end_time": start + timedelta(milliseconds=ms_played), "ms_played": ms_played,
        "event_type": "play", "device_type": "mobile", "country_code": "US",
        "schema_version": 1, "event_date": day, "kafka_partition": 0, "kafka_offset": 0,
        "ingested_at": NOON,
    }  # fmt: skip


def test_not_null(spark, lake_settings):
    check = NotNull(("event_id", "song_id"))
    assert verdict(spark, lake_settings, check, GOOD).passed
    bad = verdict(spark, lake_settings, check, changed("e-2", song_id=None))
    assert (bad.passed, bad.rows_checked, bad.failing_rows) == (False, 3, 1)
    assert json.loads(bad.example) == example_of(lake_settings, "e-2", song_id=None)
    assert "u-2" not in bad.example  # the pseudonym, never the id


def test_unique(spark, lake_settings):
    check = Unique(("event_id",))
    assert verdict(spark, lake_settings, check, GOOD).passed
    bad = verdict(spark, lake_settings, check, changed("e-3", event_id="e-1"))
    # both rows of the duplicated id fail; the example is the smaller row as JSON (s-1 < s-9)
    assert (bad.passed, bad.failing_rows) == (False, 2)
    assert json.loads(bad.example) == example_of(lake_settings, "e-1")


def test_in_range(spark, lake_settings):
    check = InRange("ms_played", 0, 200_000)
    assert verdict(spark, lake_settings, check, GOOD).passed
    bad = verdict(spark, lake_settings, check, changed("e-2", ms_played=-1))
    assert (bad.passed, bad.failing_rows) == (False, 1)
    assert json.loads(bad.example)["ms_played"] == -1
    above = verdict(spark, lake_settings, check, changed("e-3", ms_played=200_001))
    assert (above.passed, above.failing_rows) == (False, 1)


def test_one_of(spark, lake_settings):
    check = OneOf("event_type", EVENT_TYPES)
    assert verdict(spark, lake_settings, check, GOOD).passed
    bad = verdict(spark, lake_settings, check, changed("e-1", event_type="pause"))
    assert (bad.passed, bad.failing_rows) == (False, 1)
    assert json.loads(bad.example) == example_of(lake_settings, "e-1", event_type="pause")


def write_dimensions(settings) -> None:
    write_rows(settings, DIM_SONGS, [song_row(s) for s in ("s-1", "s-2")])
    write_rows(settings, DIM_USERS, [user_row(u, country=None) for u in ("u-1", "u-2")])


def test_known_to_with_a_flag_that_must_tell_the_truth(spark, lake_settings):
    write_dimensions(lake_settings)
    check = KnownTo("song_id", "dims.songs", "song_id", flag="song_known")
    assert verdict(spark, lake_settings, check, GOOD).passed  # s-9 unknown and flagged so
    lying = [
        {**GOOD[0], "song_known": False},  # s-1 is in dims.songs
        GOOD[1],
        {**GOOD[2], "song_known": True},  # s-9 is not
    ]
    bad = verdict(spark, lake_settings, check, lying)
    assert (bad.passed, bad.failing_rows) == (False, 2)
    assert json.loads(bad.example) == example_of(lake_settings, "e-1", song_known=False)


def test_known_to_without_a_flag(spark, lake_settings):
    write_dimensions(lake_settings)
    check = KnownTo("user_id", "dims.users", "user_id")
    assert verdict(spark, lake_settings, check, GOOD).passed
    bad = verdict(spark, lake_settings, check, changed("e-2", user_id="u-9"))
    assert (bad.passed, bad.failing_rows) == (False, 1)
    assert json.loads(bad.example) == example_of(lake_settings, "e-2", user_id="u-9")
    assert "u-9" not in bad.example


def test_reconciles_sums_with_the_source_day(spark, lake_settings):
    write_rows(
        lake_settings,
        PLAY_EVENTS,
        [bronze_event("e-1", DAY, 40_000), bronze_event("e-2", DAY, 5_000),
         bronze_event("e-3", DAY, 180_000),
         bronze_event("e-0", DAY - timedelta(days=1), 7_000)],  # another day: not counted
    )  # fmt: skip
    check = Reconciles("bronze.play_events", "event_date", "ms_played", "ms_played")
    assert verdict(spark, lake_settings, check, GOOD).passed
    bad = verdict(spark, lake_settings, check, changed("e-2", ms_played=6_000))
    assert (bad.passed, bad.failing_rows) == (False, 1_000)
    assert json.loads(bad.example) == {"rows": 226_000, "bronze.play_events on 2026-11-30": 225_000}
    assert "the totals differ by 1,000" in bad.describe()


def test_rows_equal_distinct_new_ids_of_the_source_day(spark, lake_settings):
    earlier = DAY - timedelta(days=1)
    write_rows(
        lake_settings,
        PLAY_EVENTS,
        [bronze_event("e-0", earlier, 1_000),
         bronze_event("e-1", DAY, 40_000), bronze_event("e-2", DAY, 5_000),
         bronze_event("e-2", DAY, 5_000),  # the stream's TTL let a duplicate through
         bronze_event("e-3", DAY, 180_000),
         bronze_event("e-0", DAY, 1_000)],  # a replay of an earlier day's event
    )  # fmt: skip
    check = RowsEqualDistinct("bronze.play_events", "event_date", "event_id")
    assert verdict(spark, lake_settings, check, GOOD).passed  # e-1, e-2, e-3
    replayed = {**GOOD[0], "event_id": "e-0"}
    bad = verdict(spark, lake_settings, check, [*GOOD, replayed])
    assert (bad.passed, bad.failing_rows) == (False, 1)
    assert json.loads(bad.example) == {"rows": 4, "bronze.play_events on 2026-11-30": 3}


# -- a failing check blocks the build ---------------------------------------------------------

PUBLISHED: list[date] = []


def silver_play(event_id: str, song_id: str) -> dict:
    start = datetime(2026, 11, 30, 9, tzinfo=UTC)
    return {
        "event_id": event_id, "user_id": "u-1", "song_id": song_id, "start_time": start,
        "end_time": start + timedelta(seconds=40), "ms_played": 40_000, "event_type": "play",
        "device_type": "mobile", "country_code": "US", "event_date": DAY, "ingested_at": NOON,
        "song_known": False, "user_known": False, "completed": True, "skipped": False,
        "local_hour": 4,
    }  # fmt: skip


def song_plays_job(spark, settings, day: date) -> list[audit.RunRecord]:
    """Stand-in for the gold job: 3 silver plays, s-1 twice and s-2 once, by hand."""
    rows = [
        {"day": day, "country_code": "US", "device_type": "tv", "song_id": s,
         "song_known": False, "plays": n,
         "likes": 0, "listeners": 1, "completed": n, "skips": 0, "ms_played": 40_000 * n}
        for s, n in (("s-1", 2), ("s-2", 1))
    ]  # fmt: skip
    frame = spark.createDataFrame(rows, DAILY_SONG_PLAYS.spark_schema())
    return [replace_day(spark, settings, DAILY_SONG_PLAYS, frame, day, 3, 0.0)]


def interactions_job(spark, settings, day: date) -> list[audit.RunRecord]:
    """Stand-in for the training job, with a negative weight."""
    played = datetime(2026, 11, 30, 9, tzinfo=UTC)
    rows = [
        {"cutoff_date": day, "user_id": "u-1", "song_id": s, "plays": 1, "completed": 1,
         "skips": 0, "likes": 0, "weight": w, "first_played_at": played,
         "last_played_at": played}
        for s, w in (("s-1", 1.0), ("s-2", -0.5))
    ]  # fmt: skip
    frame = spark.createDataFrame(rows, TRAINING_INTERACTIONS.spark_schema())
    return [replace_day(spark, settings, TRAINING_INTERACTIONS, frame, day, 2, 0.0)]


def publish_job(spark, settings, day: date) -> list[audit.RunRecord]:
    PUBLISHED.append(day)
    return []


def test_a_failing_check_stops_the_build_before_writing_and_publishing(spark, lake_settings):
    settings = lake_settings
    write_rows(settings, SILVER_PLAYS, [silver_play("e-1", "s-1"), silver_play("e-2", "s-1"),
                                        silver_play("e-3", "s-2")])  # fmt: skip
    earlier_build = {
        "cutoff_date": DAY, "user_id": "u-1", "song_id": "s-1", "plays": 1, "completed": 1,
        "skips": 0, "likes": 0, "weight": 1.0, "first_played_at": NOON, "last_played_at": NOON,
    }  # fmt: skip
    write_rows(settings, TRAINING_INTERACTIONS, [earlier_build])
    jobs = tuple(
        audit.Job(name, f"{__name__}:{function}")
        for name, function in (
            ("daily_song_plays", "song_plays_job"),
            ("training_interactions", "interactions_job"),
            ("publish", "publish_job"),
        )
    )
    PUBLISHED.clear()

    with pytest.raises(quality.QualityError) as raised:
        audit.build(spark, settings, audit.build_plan(DAY, DAY, jobs))

    message = str(raised.value)
    assert message.startswith("training.interactions 2026-11-30: 1 of 2 quality checks failed")
    assert "in_range(weight, 0, None): 1 of 2 rows fail, e.g. " in message
    example = json.loads(message.split("e.g. ", 1)[1])
    assert (example["song_id"], example["weight"]) == ("s-2", -0.5)
    assert example["listener_key"] == listener_key(settings, "u-1")
    assert "u-1" not in message
    assert PUBLISHED == []  # the step after the failing table never ran
    assert read_rows(settings, TRAINING_INTERACTIONS) == [earlier_build]  # day not replaced
    assert [r["song_id"] for r in read_rows(settings, DAILY_SONG_PLAYS)] == ["s-1", "s-2"]
    assert [r["job"] for r in audit.read_runs(settings).to_pylist()] == ["daily_song_plays"]

    results = quality.read_results(settings).to_pylist()
    assert {
        (r["table_name"], r["check_name"], r["passed"], r["failing_rows"]) for r in results
    } == {
        # every check the registry declares for the gold table, all passed
        *{("gold.daily_song_plays", c.name, True, 0) for c in DAILY_SONG_PLAYS.checks},
        ("training.interactions", "unique(cutoff_date, user_id, song_id)", True, 0),
        ("training.interactions", "in_range(weight, 0, None)", False, 1),
    }
    assert all(r["day"] == DAY and r["rows_checked"] == 2 for r in results)
    assert [json.loads(r["example"]) for r in results if not r["passed"]] == [example]
    # one build, one run id: the audit's and every check's (across both tables)
    [run_id] = {r["run_id"] for r in audit.read_runs(settings).to_pylist()}
    assert {r["run_id"] for r in results} == {run_id}
