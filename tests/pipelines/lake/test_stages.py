"""``encore lake build --stage`` (the jobs of a stage, late days from the audit) and
``encore lake check`` (a day's rows as written, checked again)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from encore.errors import ConfigurationError
from encore.tables import DIM_SONGS, DIM_USERS, PLAY_EVENTS, SILVER_PLAYS
from pipelines.lake import audit, quality
from pipelines.lake.audit import RunRecord
from tests.pipelines.lake.conftest import song_row, user_row, write_rows
from tests.pipelines.lake.test_silver import at, event, play_row

D = date(2026, 11, 29)


def names(jobs: tuple[audit.Job, ...]) -> list[str]:
    return [job.name for job in jobs]


def test_every_job_has_a_stage_and_the_stages_keep_the_build_order():
    assert names(audit.jobs_of(None)) == names(audit.JOBS)
    together = [job for stage in audit.STAGES for job in audit.jobs_of([stage])]
    assert names(tuple(together)) == names(audit.JOBS)  # stage by stage = one whole build
    assert names(audit.jobs_of(["publish"])) == ["publish_top_songs"]
    assert names(audit.jobs_of(["silver"])) == ["silver_plays", "silver_sessions"]
    assert names(audit.jobs_of(["features"])) == [
        "listener_activity",
        "song_activity",
        "artist_popularity",
    ]
    assert names(audit.jobs_of(["training"])) == ["training_interactions"]
    # given out of order, still in build order
    assert names(audit.jobs_of(["publish", "dims"])) == ["dims", "publish_top_songs"]
    with pytest.raises(ConfigurationError, match="unknown stage"):
        audit.jobs_of(["gold", "bronze"])


def test_only_publish_needs_no_spark():
    publish = audit.build_plan(D, D, audit.jobs_of(["publish"]))
    assert [(s.job.name, s.day) for s in publish] == [("publish_top_songs", D)]
    assert not audit.needs_spark(publish)
    assert audit.needs_spark(audit.build_plan(D, D, audit.jobs_of(["gold", "publish"])))


def run(settings, job: str, day: date) -> None:
    audit.append_runs(settings, "r", job, [RunRecord(f"t.{job}", day, 1, 1, 1, 0.1)])


def test_a_day_whose_silver_was_rebuilt_after_its_gold_is_rebuilt_by_a_gold_build(
    lake_settings,
):
    settings = lake_settings
    gold = audit.jobs_of(["gold"])
    d1, d2, d3 = D - timedelta(3), D - timedelta(2), D - timedelta(1)
    for day in (d1, d2, d3):
        run(settings, "silver_plays", day)
        for job in gold:
            run(settings, job.name, day)
    run(settings, "silver_plays", d2)  # late events of d2 taken in after its gold was built
    run(settings, "silver_plays", d3)  # and d3's, whose gold build then stopped part-way
    for job in gold[:-1]:
        run(settings, job.name, d3)

    rebuilt = audit.rebuilt_days(settings, D, gold)

    assert [r.day for r in rebuilt] == [d2, d3]
    plan = audit.plan_with_late_days(D, D, rebuilt, gold)
    assert {s.day for s in plan} == {d2, d3, D}
    assert audit.rebuilt_days(settings, D, audit.jobs_of(["publish"])) == []  # snapshot only


@pytest.mark.spark
def test_check_names_the_failing_check_of_the_rows_as_written(spark, lake_settings):
    settings = lake_settings
    write_rows(settings, DIM_SONGS, [song_row("s-1")])
    write_rows(settings, DIM_USERS, [user_row("u-1")])
    write_rows(
        settings, PLAY_EVENTS, [event(f"e-{n}", "u-1", "s-1", at(D, 9, n), 1) for n in (1, 2)]
    )
    good, bad = play_row("e-1", "u-1", at(D, 9, 1), 1), play_row("e-2", "u-1", at(D, 9, 2), 1)
    write_rows(settings, SILVER_PLAYS, [good, {**bad, "ms_played": -5}])

    run_id, verdicts = quality.check_written(spark, settings, D, ["silver"])

    by_table = {v.table: v for v in verdicts}
    assert list(by_table) == ["silver.plays", "silver.sessions"]
    plays, sessions = by_table["silver.plays"], by_table["silver.sessions"]
    assert not plays.passed and plays.rows == 2
    (failure,) = plays.failures()
    assert failure.startswith(
        "quality check failed: silver.plays 2026-11-29 in_range(ms_played, 0, None): 1 of 2 rows"
    )
    assert '"ms_played": -5' in failure
    assert sessions.passed and sessions.describe().endswith(
        "no rows for the day, 4 of 4 checks passed"
    )
    recorded = [r for r in quality.read_results(settings).to_pylist() if r["run_id"] == run_id]
    assert len(recorded) == len(plays.results) + len(sessions.results)
    assert sum(not r["passed"] for r in recorded) == 1
