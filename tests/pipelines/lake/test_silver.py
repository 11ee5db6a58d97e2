"""silver.plays and silver.sessions on real Spark and Delta, against hand-computed rows.

Bronze and the dimensions are written straight into their tables (delta-rs), as the stream
and the dims job would; each expectation below is worked out by hand from those rows.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from encore.settings import Settings
from encore.tables import DIM_SONGS, DIM_USERS, PLAY_EVENTS, SILVER_PLAYS, SILVER_SESSIONS
from pipelines.lake import silver
from tests.pipelines.lake.conftest import read_rows, song_row, user_row, write_rows

pytestmark = [pytest.mark.spark]

D0, D1, D2 = date(2026, 11, 28), date(2026, 11, 29), date(2026, 11, 30)
ARRIVAL = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=UTC)


_offsets = iter(range(1_000_000))


def event(
    event_id: str,
    user_id: str,
    song_id: str,
    start: datetime,
    ms: int,
    event_type: str = "play",
    country: str = "JP",
    device: str = "mobile",
    ingested: datetime = ARRIVAL,
    offset: int | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "song_id": song_id,
        "start_time": start,
        "end_time": start + timedelta(milliseconds=ms),
        "ms_played": ms,
        "event_type": event_type,
        "device_type": device,
        "country_code": country,
        "schema_version": 1,
        "event_date": start.date(),
        "kafka_partition": 0,
        "kafka_offset": next(_offsets) if offset is None else offset,
        "ingested_at": ingested,
    }


def write_dims(settings: Settings) -> None:
    write_rows(
        settings,
        DIM_SONGS,
        [
            song_row("s-long", "a-1", genre="rock", duration_ms=200_000),
            song_row("s-short", "a-2", genre="jazz", duration_ms=40_000),
        ],
    )
    write_rows(settings, DIM_USERS, [user_row("u-jp", "JP"), user_row("u-us", "US")])


def bronze_events() -> list[dict[str, Any]]:
    later = ARRIVAL + timedelta(minutes=5)
    return [
        # D0: the first copy of e-7 (a client that reused the id a day later)
        event("e-7", "u-us", "s-long", at(D0, 23, 0), 60_000, country="US"),
        # D1
        event("e-1", "u-jp", "s-long", at(D1, 10, 0), 30_000),  # completed by 30 s
        event("e-1", "u-jp", "s-long", at(D1, 10, 0), 30_000, device="web", ingested=later),
        event("e-2", "u-jp", "s-short", at(D1, 10, 1), 20_000, offset=500),  # half the song
        event("e-2", "u-jp", "s-short", at(D1, 10, 1), 20_000, device="tv", offset=501),
        event("e-6", "u-jp", "s-short", at(D1, 10, 1, 20), 0, "like"),
        event("e-3", "u-us", "s-long", at(D1, 15, 0), 29_999, country="US"),  # stopped early
        event("e-4", "u-us", "s-long", at(D1, 15, 5), 5_000, "skip", country="US"),
        event("e-5", "u-ghost", "s-gone", at(D1, 15, 10), 60_000, country="DE"),  # unknowns
        event("e-7", "u-us", "s-long", at(D1, 1, 0), 60_000, country="US"),  # seen on D0
    ]


def test_the_country_time_zone_map_comes_from_tzdata():
    zones = silver.country_time_zones()
    assert zones["JP"] == "Asia/Tokyo"
    assert zones["US"] == "America/New_York"
    assert zones["AU"] == "Australia/Sydney"  # zone.tab lists Lord Howe Island first
    assert len(zones) > 240


def test_plays_are_deduplicated_joined_and_derived_the_same_on_a_second_run(spark, lake_settings):
    settings = lake_settings
    write_dims(settings)
    write_rows(settings, PLAY_EVENTS, bronze_events())

    first = silver.run_plays(spark, settings, D1)
    rows = read_rows(settings, SILVER_PLAYS)
    picked = {
        r["event_id"]: (
            r["device_type"],
            r["song_known"],
            r["user_known"],
            r["artist_id"],
            r["genre"],
            r["duration_ms"],
            r["completed"],
            r["skipped"],
            r["local_hour"],
        )
        for r in rows
    }
    assert picked == {
        # JST is UTC+9: 10:00 UTC is 19:00 in Tokyo
        "e-1": ("mobile", True, True, "a-1", "rock", 200_000, True, False, 19),
        # same arrival time: the lower Kafka offset wins
        "e-2": ("mobile", True, True, "a-2", "jazz", 40_000, True, False, 19),
        "e-6": ("mobile", True, True, "a-2", "jazz", 40_000, False, False, 19),
        # New York is UTC-5 in November: 15:00 UTC is 10:00 there
        "e-3": ("mobile", True, True, "a-1", "rock", 200_000, False, True, 10),
        "e-4": ("mobile", True, True, "a-1", "rock", 200_000, False, True, 10),
        # Berlin is UTC+1 in November
        "e-5": ("mobile", False, False, None, None, None, True, False, 16),
    }
    assert {r["event_date"] for r in rows} == {D1}
    assert [(r.table, r.day, r.rows_in, r.rows_out) for r in first] == [("silver.plays", D1, 9, 6)]

    second = silver.run_plays(spark, settings, D1)
    assert read_rows(settings, SILVER_PLAYS) == rows
    assert (second[0].rows_in, second[0].rows_out) == (9, 6)
    assert second[0].delta_version == first[0].delta_version + 1

    silver.run_plays(spark, settings, D0)  # the earlier copy of e-7 stays on its own day
    assert {(r["event_id"], r["event_date"]) for r in read_rows(settings, SILVER_PLAYS)} == {
        (e, D1) for e in picked
    } | {("e-7", D0)}


def play_row(
    event_id: str,
    user_id: str,
    start: datetime,
    minutes: int,
    device: str = "mobile",
    event_type: str = "play",
    song_id: str = "s-1",
) -> dict[str, Any]:
    """A silver.plays row: the bronze :func:`event` with the columns silver derives
    (``write_rows`` drops bronze's Kafka bookkeeping, silver has no such columns)."""
    bronze = event(event_id, user_id, song_id, start, minutes * 60_000, event_type, "PT", device)
    return {
        **bronze,
        "song_known": True,
        "user_known": True,
        "completed": event_type not in ("like", "skip"),
        "skipped": event_type == "skip",
        "local_hour": start.hour,
    }


def session_id(user_id: str, start: datetime) -> str:
    micros = int(start.timestamp()) * 1_000_000
    return hashlib.sha256(f"{user_id}|{micros}".encode()).hexdigest()


def test_sessions_split_after_the_gap_and_belong_to_their_start_day(spark, lake_settings):
    """Built as the daily runs would: D1 first, before D2's plays exist; then the build of
    D2, which re-runs D1's sessions (b1 runs past midnight into D2)."""
    from pipelines.lake import audit

    settings = lake_settings
    assert settings.lake.session_gap_minutes == 30
    next_day = [
        play_row("b2", "u-b", at(D2, 0, 10), 3, "tablet"),
        play_row("b3", "u-b", at(D2, 2, 0), 4, "tv"),
    ]
    write_rows(
        settings,
        SILVER_PLAYS,
        [
            # u-a: a session from D0 23:40 that runs into D1 (20 min of silence): D0's
            play_row("a0", "u-a", at(D0, 23, 40), 5),
            play_row("a1", "u-a", at(D1, 0, 5), 3),
            # then 08:00-08:03, 29 min of silence, 08:32-08:35: one session (and a like)
            play_row("a2", "u-a", at(D1, 8, 0), 3, song_id="s-2"),
            play_row("a3", "u-a", at(D1, 8, 32), 3),
            play_row("a4", "u-a", at(D1, 8, 35), 0, "mobile", "like"),
            # 31 min after 08:35: a new session, one web and one desktop play
            play_row("a5", "u-a", at(D1, 9, 6), 3, "web"),
            play_row("a6", "u-a", at(D1, 9, 10), 1, "desktop", "skip"),
            # u-b: D1 23:50-23:55, D2 00:10-00:13 (15 min apart): one session of D1
            play_row("b1", "u-b", at(D1, 23, 50), 5, "tablet"),
        ],
    )
    silver.run_sessions(spark, settings, D1)
    [cut] = [r for r in read_rows(settings, SILVER_SESSIONS) if r["user_id"] == "u-b"]
    assert cut["session_end"] == at(D1, 23, 55)  # as far as D1's build could see

    write_rows(settings, SILVER_PLAYS, next_day)
    plan = [s.day for s in audit.build_plan(D2, D2) if s.job.name == "silver_sessions"]
    assert plan == [D1, D2]
    [record] = silver.run_sessions(spark, settings, D1)
    silver.run_sessions(spark, settings, D2)
    sessions = read_rows(settings, SILVER_SESSIONS, sort_by=("session_date", "session_start"))
    got = [
        (
            r["session_id"],
            r["user_id"],
            r["session_date"],
            r["session_start"],
            r["session_end"],
            r["length_s"],
            r["plays"],
            r["skips"],
            r["completed"],
            r["distinct_songs"],
            r["device_type"],
            r["country_code"],
        )
        for r in sessions
    ]
    s_a1, s_a2, s_b1, s_b2 = at(D1, 8, 0), at(D1, 9, 6), at(D1, 23, 50), at(D2, 2, 0)
    a1, a2 = session_id("u-a", s_a1), session_id("u-a", s_a2)
    b1, b2 = session_id("u-b", s_b1), session_id("u-b", s_b2)
    assert got == [
        (a1, "u-a", D1, s_a1, at(D1, 8, 35), 2100.0, 2, 0, 2, 2, "mobile", "PT"),
        # a tie of devices: the alphabetically first
        (a2, "u-a", D1, s_a2, at(D1, 9, 11), 300.0, 2, 1, 1, 1, "desktop", "PT"),
        (b1, "u-b", D1, s_b1, at(D2, 0, 13), 1380.0, 2, 0, 2, 1, "tablet", "PT"),
        (b2, "u-b", D2, s_b2, at(D2, 2, 4), 240.0, 1, 0, 1, 1, "tv", "PT"),
    ]
    # every play of D0 .. D2 but the like was read for D1
    assert (record.table, record.rows_in, record.rows_out) == ("silver.sessions", 9, 3)
