"""The listeners' gold tables from a hand-made silver over five weeks, each against rows
computed by hand: window edges, a listener in two countries, new listeners, cohorts as of a
day, idempotence, and no raw user id in any written file.

The built day D is Wednesday 2026-04-01 (its week starts Monday 03-30). Its 28-day window
starts 03-05 (D-27), its 7-day window 03-26 (D-6). Listeners and their listening days:

=====  ====================================  ===========================================
who    days (country)                        why
=====  ====================================  ===========================================
ana    02-24 (SE), D (SE and NO)             two countries on D; cohort 02-23 returns wk 5
bo     03-04 (SE), 03-17 (SE)                cohort 03-02, returns in week 2
cy     03-04 (NO)                            D-28: out of the 28 days
dag    02-24 (SE), 03-05 (SE)                D-27: the 28 days' first day
eli    03-26 (NO)                            D-6: the 7 days' first day
fay    03-25 (SE)                            D-7: out of the 7 days
gus    D (AT and DE)                         new on D; country and genre ties
hal    03-17 (SE), D (SE)                    unknown songs only: no top genre; no session D
ivy    D: a like only                        a like is no listening: no row anywhere
=====  ====================================  ===========================================

Few Spark actions (each job run costs several): ``gold.user_daily_listening`` before D is
written by hand (:data:`HISTORY`, the rows earlier builds would have left), each job is
built once for D in one module fixture (the cohorts also as of 03-17, after D exists), and
one test rebuilds D once for idempotence. Every expectation is a literal worked out from
the rows above, never computed the way the job computes it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from encore.settings import Settings
from encore.tables import (
    COUNTRY_DEVICE_BREAKDOWN,
    DAILY_ACTIVE_USERS,
    RETENTION_COHORTS,
    SILVER_PLAYS,
    SILVER_SESSIONS,
    USER_DAILY_LISTENING,
)
from pipelines.lake.gold import listeners
from pipelines.lake.pseudonyms import listener_key

from .conftest import read_rows, write_rows

pytestmark = [pytest.mark.spark]

D = date(2026, 4, 1)
MAR17 = date(2026, 3, 17)
FEB24 = date(2026, 2, 24)
USERS = {
    name: f"user-{n:04d}-{name}"
    for n, name in enumerate(["ana", "bo", "cy", "dag", "eli", "fay", "gus", "hal", "ivy"], start=1)
}
SONGS = {"s1": ("a1", "rock"), "s2": ("a1", "pop"), "s3": ("a2", "pop"), "s9": (None, None)}
GOLD = (USER_DAILY_LISTENING, DAILY_ACTIVE_USERS, RETENTION_COHORTS, COUNTRY_DEVICE_BREAKDOWN)
JOBS_OF_D = (
    listeners.run_user_daily_listening,
    listeners.run_daily_active_users,
    listeners.run_retention_cohorts,
    listeners.run_country_device_breakdown,
)

_events = iter(range(1, 1000))


def play(
    who: str,
    day: date,
    hour: float,
    country: str,
    device: str,
    song: str,
    ms: int,
    event_type: str = "play",
) -> dict:
    """One silver play; completed and skipped as silver derives them for these rows."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)
    artist, genre = SONGS[song]
    completed = event_type != "like" and ms >= 30_000
    return {
        "event_id": f"e{next(_events)}",
        "user_id": USERS[who],
        "song_id": song,
        "start_time": start,
        "end_time": start + timedelta(milliseconds=ms),
        "ms_played": ms,
        "event_type": event_type,
        "device_type": device,
        "country_code": country,
        "event_date": day,
        "ingested_at": start,
        "artist_id": artist,
        "album_id": None,
        "genre": genre,
        "duration_ms": 240_000 if artist else None,
        "song_known": artist is not None,
        "user_known": True,
        "completed": completed,
        "skipped": event_type == "skip" or (event_type == "play" and not completed),
        "local_hour": start.hour,
    }


def mar(day: int) -> date:
    return date(2026, 3, day)


PLAYS = [
    play("dag", FEB24, 9, "SE", "mobile", "s1", 100_000),
    play("ana", FEB24, 10, "SE", "mobile", "s2", 150_000),
    play("cy", mar(4), 9, "NO", "mobile", "s2", 10_000),
    play("bo", mar(4), 10, "SE", "desktop", "s1", 120_000),
    play("dag", mar(5), 9, "SE", "mobile", "s3", 90_000),
    play("bo", MAR17, 9, "SE", "desktop", "s3", 70_000),
    play("hal", MAR17, 10, "SE", "smart_speaker", "s9", 30_000),
    play("fay", mar(25), 9, "SE", "web", "s2", 45_000),
    play("eli", mar(26), 9, "NO", "mobile", "s1", 200_000),
    play("ana", D, 10, "SE", "mobile", "s1", 200_000, "complete"),
    play("ana", D, 10.07, "SE", "mobile", "s2", 20_000, "skip"),
    play("ana", D, 10.08, "SE", "mobile", "s1", 0, "like"),
    play("ana", D, 18, "NO", "desktop", "s3", 180_000, "complete"),
    play("gus", D, 12, "AT", "web", "s1", 60_000),
    play("gus", D, 12.2, "DE", "web", "s3", 40_000),
    play("gus", D, 12.4, "AT", "web", "s9", 10_000),
    play("gus", D, 12.6, "DE", "web", "s9", 20_000),
    play("hal", D, 20, "SE", "mobile", "s9", 5_000, "skip"),
    play("ivy", D, 21, "SE", "mobile", "s1", 0, "like"),
]


def session(who: str, day: date, hour: float, minutes: float, plays: int) -> dict:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)
    return {
        "session_id": f"{who}-{day}-{hour}",
        "user_id": USERS[who],
        "session_start": start,
        "session_end": start + timedelta(minutes=minutes),
        "session_date": day,
        "length_s": minutes * 60.0,
        "plays": plays,
        "skips": 0,
        "completed": plays,
        "distinct_songs": plays,
        "device_type": "mobile",
        "country_code": "SE",
    }


SESSIONS = [
    session("bo", MAR17, 9, 2, 1),
    session("hal", MAR17, 10, 1, 1),
    session("ana", D, 10, 4, 2),
    session("ana", D, 18, 3, 1),
    session("gus", D, 12, 37, 4),
]
# gold.user_daily_listening before D, as the builds of those days left it: (day, who,
# values of the registry's columns after day and listener_key). Single plays each, so every
# figure reads off the play: a play under 30 s is a skip, sessions only where silver has one.
HISTORY = [
    (FEB24, "dag", ("SE", 1, 0, 1, 100_000, 1, 1, 0, "rock")),
    (FEB24, "ana", ("SE", 1, 0, 1, 150_000, 1, 1, 0, "pop")),
    (mar(4), "cy", ("NO", 1, 1, 0, 10_000, 1, 1, 0, "pop")),
    (mar(4), "bo", ("SE", 1, 0, 1, 120_000, 1, 1, 0, "rock")),
    (mar(5), "dag", ("SE", 1, 0, 1, 90_000, 1, 1, 0, "pop")),
    (MAR17, "bo", ("SE", 1, 0, 1, 70_000, 1, 1, 1, "pop")),
    (MAR17, "hal", ("SE", 1, 0, 1, 30_000, 1, 0, 1, None)),
    (mar(25), "fay", ("SE", 1, 0, 1, 45_000, 1, 1, 0, "pop")),
    (mar(26), "eli", ("NO", 1, 0, 1, 200_000, 1, 1, 0, "rock")),
]


def key(settings: Settings, who: str) -> str:
    return listener_key(settings, USERS[who])


def listening_row(settings: Settings, day: date, who: str, values: tuple) -> dict:
    """A row of ``gold.user_daily_listening``: ``values`` in the registry's column order."""
    columns = USER_DAILY_LISTENING.column_names
    return dict(zip(columns, (day, key(settings, who), *values), strict=True))


@pytest.fixture(scope="module")
def lake(spark, platform: Settings, tmp_path_factory) -> tuple[Settings, dict]:
    """Silver and the listening history written by hand; each job built once for D (in the
    build's order), then the cohorts as of 03-17, when D's listening already exists."""
    settings = platform.model_copy(
        update={
            "lake": platform.lake.model_copy(
                update={"root": str(tmp_path_factory.mktemp("gold-listeners") / "lake")}
            )
        }
    )
    write_rows(settings, SILVER_PLAYS, PLAYS)
    write_rows(settings, SILVER_SESSIONS, SESSIONS)
    write_rows(settings, USER_DAILY_LISTENING, [listening_row(settings, *row) for row in HISTORY])
    records = {run.__name__: run(spark, settings, D) for run in JOBS_OF_D}
    records["cohorts as of 03-17"] = listeners.run_retention_cohorts(spark, settings, MAR17)
    return settings, records


def test_user_daily_listening(lake) -> None:
    settings, records = lake
    on_d = [
        # SE 2 plays vs NO 1; pop 2 vs rock 1; the like is not counted; two sessions
        (D, "ana", ("SE", 3, 1, 2, 400_000, 3, 2, 2, "pop")),
        # AT 2 = DE 2: AT; pop 1 = rock 1 (s9's unknown genre not counted): pop
        (D, "gus", ("AT", 4, 2, 2, 130_000, 3, 2, 1, "pop")),
        # unknown song only: no artist, no top genre; no session row on D: 0
        (D, "hal", ("SE", 1, 1, 0, 5_000, 1, 0, 0, None)),
    ]
    expected = [listening_row(settings, *row) for row in HISTORY + on_d]
    assert read_rows(settings, USER_DAILY_LISTENING) == sorted(
        expected, key=lambda r: (r["day"], r["listener_key"])
    )
    (record,) = records["run_user_daily_listening"]
    # 8 listening plays (2 likes left out) and 3 sessions of D read; 3 listeners written
    assert (record.table, record.day, record.rows_in, record.rows_out) == (
        "gold.user_daily_listening",
        D,
        11,
        3,
    )


def hours(ms: int) -> float:
    return pytest.approx(ms / 3_600_000)


def test_daily_active_users(lake) -> None:
    settings, records = lake
    columns = DAILY_ACTIVE_USERS.column_names
    # dau, wau, mau, new_listeners, plays, listening_hours
    expected = {
        # ana counts in SE and NO, once in ALL; gus (new) in AT and DE, once in ALL
        "ALL": (3, 4, 7, 1, 8, hours(535_000)),
        "AT": (1, 1, 1, 1, 2, hours(70_000)),
        "DE": (1, 1, 1, 1, 2, hours(60_000)),
        # eli 03-26 (D-6) is in the 7 days; cy 03-04 (D-28) is out of the 28
        "NO": (1, 2, 2, 0, 1, hours(180_000)),
        # dag 03-05 (D-27) is in the 28 days; fay 03-25 (D-7) out of the 7; ivy only liked;
        # hal played before (03-17): not new
        "SE": (2, 2, 5, 0, 3, hours(225_000)),
    }
    assert read_rows(settings, DAILY_ACTIVE_USERS) == [
        dict(zip(columns, (D, country, *values), strict=True))
        for country, values in expected.items()
    ]
    (record,) = records["run_daily_active_users"]
    # the 28 days' listening plays: dag, bo, hal, fay, eli before D and 8 on D
    assert (record.rows_in, record.rows_out) == (13, 5)


def cohort_rows(day: date, cohorts: dict[date, tuple[int, list[int]]]) -> list[dict]:
    return [
        {
            "day": day,
            "cohort_week": week,
            "weeks_since": since,
            "cohort_size": size,
            "active": active,
            "retention": pytest.approx(active / size),
        }
        for week, (size, actives) in cohorts.items()
        for since, active in enumerate(actives)
    ]


def test_retention_cohorts_as_of_each_day(lake) -> None:
    settings, records = lake
    feb23, mar2, mar16, mar23, mar30 = date(2026, 2, 23), mar(2), mar(16), mar(23), mar(30)
    expected = cohort_rows(
        # as of 03-17, built after D: what came later (ana's return, the 03-23 and 03-30
        # cohorts) unseen
        MAR17,
        {feb23: (2, [2, 1, 0, 0]), mar2: (2, [2, 0, 1]), mar16: (1, [1])},
    ) + cohort_rows(
        D,
        {
            feb23: (2, [2, 1, 0, 0, 0, 1]),  # ana and dag: dag back in week 1, ana in week 5
            mar2: (2, [2, 0, 1, 0, 0]),  # bo and cy: bo back in week 2
            mar16: (1, [1, 0, 1]),
            mar23: (2, [2, 0]),
            mar30: (1, [1]),
        },
    )
    assert read_rows(settings, RETENTION_COHORTS) == sorted(
        expected, key=lambda r: (r["day"], r["cohort_week"], r["weeks_since"])
    )
    # history rows read: 9 before D and D's 3; up to 03-17, 7
    (on_d,) = records["run_retention_cohorts"]
    (on_mar17,) = records["cohorts as of 03-17"]
    assert (on_d.rows_in, on_d.rows_out) == (12, 6 + 5 + 3 + 2 + 1)
    assert (on_mar17.rows_in, on_mar17.rows_out) == (7, 4 + 3 + 1)


def test_country_device_breakdown(lake) -> None:
    settings, records = lake
    columns = COUNTRY_DEVICE_BREAKDOWN.column_names
    # plays, listeners, skips, ms_played
    expected = {
        ("AT", "web"): (2, 1, 1, 70_000),
        ("DE", "web"): (2, 1, 1, 60_000),
        ("NO", "desktop"): (1, 1, 0, 180_000),
        ("SE", "mobile"): (3, 2, 2, 225_000),  # ana and hal; the likes left out
    }
    assert read_rows(settings, COUNTRY_DEVICE_BREAKDOWN) == [
        dict(zip(columns, (D, *dims, *values), strict=True)) for dims, values in expected.items()
    ]
    (record,) = records["run_country_device_breakdown"]
    assert (record.rows_in, record.rows_out) == (8, 4)


def test_no_raw_user_id_in_any_written_file(lake) -> None:
    settings, _ = lake
    ids = list(USERS.values())
    files = [f for t in GOLD for f in Path(t.path(settings)).rglob("*") if f.is_file()]
    parquet = [f for f in files if f.suffix == ".parquet"]
    assert len(parquet) >= len(GOLD)
    for path in parquet:
        data = pq.read_table(path)
        assert not {"user_id", "user"} & set(data.column_names), path
        values = [str(v) for column in data.columns for v in column.to_pylist()]
        assert not [i for i in ids if any(i in v for v in values)], path
    for path in files:  # the Delta log too: its file statistics hold min and max values
        raw = path.read_bytes()
        assert not [i for i in ids if i.encode() in raw], path


def test_a_day_built_twice_has_the_same_content(spark, lake) -> None:
    """The one rebuild of the module: every job for D again, in the build's order."""
    settings, records = lake
    before = {t.name: read_rows(settings, t) for t in GOLD}
    again = [run(spark, settings, D) for run in JOBS_OF_D]
    assert {t.name: read_rows(settings, t) for t in GOLD} == before
    first = [records[run.__name__] for run in JOBS_OF_D]
    for (old,), (new,) in zip(first, again, strict=True):
        assert (new.rows_in, new.rows_out) == (old.rows_in, old.rows_out)
        assert new.delta_version > old.delta_version
