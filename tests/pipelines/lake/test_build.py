"""The build plan with late data: an earlier day whose bronze received events after its last
build is found cheaply (delta-rs) and rebuilt, with every day after it; a replayed event
(already in silver) is not a reason to rebuild. One build is one run id."""

from __future__ import annotations

from datetime import timedelta

import pytest

from encore.tables import PLAY_EVENTS, SILVER_PLAYS
from pipelines.lake import audit
from tests.pipelines.lake.conftest import read_rows, write_rows
from tests.pipelines.lake.test_silver import ARRIVAL, D0, D1, D2, at, event

# silver.sessions is tested on its own (test_silver.py); the plays job alone keeps this short
PLAYS_JOB = tuple(job for job in audit.JOBS if job.name == "silver_plays")


def test_late_days_start_the_daily_jobs_earlier_and_snapshots_stay_on_the_last_day():
    snapshot, daily = audit.Job("snap", "x:y", snapshot=True), audit.Job("daily", "x:y")
    late = [audit.LateDay(D0, 3, None)]
    plan = audit.plan_with_late_days(D2, D2, late, (snapshot, daily))
    assert [(s.job.name, s.day) for s in plan] == [
        ("snap", D2),
        ("daily", D0),
        ("daily", D1),
        ("daily", D2),
    ]
    assert audit.plan_with_late_days(D1, D2, [], (daily,)) == audit.build_plan(D1, D2, (daily,))
    assert (
        late[0].reason()
        == "2026-11-28: 3 new events in bronze (silver.plays has no rows of the day)"
    )


@pytest.mark.spark
def test_a_late_event_rebuilds_its_day_and_a_replay_does_not(spark, lake_settings):
    settings = lake_settings
    write_rows(
        settings,
        PLAY_EVENTS,
        [
            event("e-0", "u-1", "s-1", at(D0, 9, 0), 40_000),
            event("e-1", "u-1", "s-1", at(D1, 9, 0), 40_000),
        ],
    )
    # never built: both days lack silver
    assert [(d.day, d.new_events, d.silver_newest) for d in audit.late_days(settings, D2)] == [
        (D0, 1, None),
        (D1, 1, None),
    ]
    audit.build(spark, settings, audit.build_plan(D0, D1, PLAYS_JOB))
    assert audit.late_days(settings, D2) == []

    later = ARRIVAL + timedelta(hours=30)
    write_rows(
        settings,
        PLAY_EVENTS,
        [
            event("e-late", "u-1", "s-1", at(D0, 21, 0), 40_000, ingested=later),
            event("e-1", "u-1", "s-1", at(D1, 9, 0), 40_000, ingested=later),  # a replay
        ],
    )
    late = audit.late_days(settings, D2)
    assert late == [audit.LateDay(D0, 1, ARRIVAL)]
    assert "ingested after silver.plays' newest, 2026-11-30 12:00:00" in late[0].reason()

    plan = audit.plan_with_late_days(D2, D2, late, PLAYS_JOB)
    assert [(s.job.name, s.day) for s in plan] == [
        (job.name, day) for job in PLAYS_JOB for day in (D0, D1, D2)
    ]
    audit.build(spark, settings, plan)
    plays = {(r["event_id"], r["event_date"]) for r in read_rows(settings, SILVER_PLAYS)}
    assert plays == {("e-0", D0), ("e-late", D0), ("e-1", D1)}
    assert audit.late_days(settings, D2) == []  # the replay stays in bronze, ignored
    audited = audit.read_runs(settings).to_pylist()
    runs = [(r["job"], r["day"]) for r in audited]
    assert runs[-3:] == [(job.name, day) for job in PLAYS_JOB for day in (D0, D1, D2)]
    # one run id per build: the first build's two days, then the second's three
    first, second = audited[0]["run_id"], audited[-1]["run_id"]
    assert first != second
    assert [r["run_id"] for r in audited] == [first] * 2 + [second] * 3


def test_the_current_run_id_is_the_builds_and_a_job_outside_a_build_makes_its_own():
    assert audit.current_run_id() != audit.current_run_id()
    with audit.current_run() as run_id:
        assert audit.current_run_id() == run_id == audit.current_run_id()
    assert audit.current_run_id() != run_id


def test_no_lookback_means_no_late_days(lake_settings):
    settings = lake_settings.model_copy(
        update={"lake": lake_settings.lake.model_copy(update={"late_lookback_days": 0})}
    )
    write_rows(settings, PLAY_EVENTS, [event("e-0", "u-1", "s-1", at(D0, 9, 0), 40_000)])
    assert audit.late_days(settings, D1) == []
    assert audit.late_days(lake_settings, D1) == [audit.LateDay(D0, 1, None)]


def test_a_build_refuses_the_default_pseudonym_key_outside_development(lake_settings):
    from encore.errors import ConfigurationError
    from encore.settings import LakeSettings

    production = lake_settings.model_copy(
        update={
            "development": False,
            "lake": lake_settings.lake.model_copy(
                update={"pseudonym_secret": LakeSettings().pseudonym_secret}
            ),
        }
    )
    ran = []
    job = audit.Job("spy", "x:y")
    plan = [audit.Step(job, D2)]
    with pytest.raises(ConfigurationError, match="PSEUDONYM_SECRET"):
        audit.build(None, production, plan, on_step=lambda *_: ran.append(1))
    assert ran == []
