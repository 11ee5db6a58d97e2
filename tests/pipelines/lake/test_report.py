"""The lake's read-only summaries over hand-made rows (delta-rs, no Spark): each expectation
is worked out by hand from the rows written here."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from encore.tables import (
    DAILY_ACTIVE_USERS,
    DAILY_SONG_PLAYS,
    DIM_ARTISTS,
    DIM_SONGS,
    JOB_RUNS,
    PLAY_EVENTS,
    QUALITY_RESULTS,
    SKIP_RATES,
)
from pipelines.lake import report
from pipelines.lake.report import ActiveUsers, SkipRate, SongPlays, TableChecks, TableRuns
from tests.pipelines.lake.conftest import artist_row, song_row, write_rows
from tests.pipelines.lake.test_silver import at, event

D1, D2 = date(2026, 11, 29), date(2026, 11, 30)
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def song_day(day: date, country: str, song: str, artist: str | None, plays: int) -> dict:
    return {
        "day": day,
        "country_code": country,
        "device_type": "mobile",
        "song_id": song,
        "artist_id": artist,
        "song_known": artist is not None,
        "plays": plays,
        "likes": 0,
        "listeners": 1,
        "completed": 0,
        "skips": 0,
        "ms_played": 0,
    }


def test_bronze_days_are_the_partitions_oldest_first(lake_settings):
    write_rows(
        lake_settings,
        PLAY_EVENTS,
        [
            event("e-2", "u-1", "s-1", at(D2, 9, 0), 40_000),
            event("e-1", "u-1", "s-1", at(D1, 9, 0), 40_000),
            event("e-3", "u-2", "s-1", at(D2, 10, 0), 40_000),
        ],
    )
    assert report.bronze_days(lake_settings) == [D1, D2]


def test_top_songs_sum_countries_and_name_songs_and_artists(lake_settings):
    write_rows(
        lake_settings,
        DAILY_SONG_PLAYS,
        [
            song_day(D2, "JP", "s-a", "ar-1", 3),
            song_day(D2, "US", "s-a", "ar-1", 2),  # s-a: 5 over both countries
            song_day(D2, "US", "s-b", "ar-2", 5),  # ties with s-a: by song id, after it
            song_day(D2, "JP", "s-c", "ar-1", 4),
            song_day(D2, "US", "s-gone", None, 7),  # not in the catalog: no title, no artist
            song_day(D2, "US", "s-d", "ar-3", 1),  # its artist is not in dims.artists
            song_day(D1, "US", "s-d", "ar-3", 100),  # another day
        ],
    )
    write_rows(
        lake_settings,
        DIM_SONGS,
        [
            song_row("s-a", "ar-1", title="Alpha"),
            song_row("s-b", "ar-2", title="Beta"),
            song_row("s-c", "ar-1", title="Gamma"),
            song_row("s-d", "ar-3", title="Delta"),
        ],
    )
    write_rows(
        lake_settings, DIM_ARTISTS, [artist_row("ar-1", name="One"), artist_row("ar-2", name="Two")]
    )

    assert report.top_songs(lake_settings, D2, 10) == [
        SongPlays("s-gone", None, None, 7),
        SongPlays("s-a", "Alpha", "One", 5),
        SongPlays("s-b", "Beta", "Two", 5),
        SongPlays("s-c", "Gamma", "One", 4),
        SongPlays("s-d", "Delta", None, 1),
    ]
    assert [s.song_id for s in report.top_songs(lake_settings, D2, 2)] == ["s-gone", "s-a"]
    assert report.top_songs(lake_settings, date(2026, 11, 1), 10) == []


def test_active_users_are_the_all_countries_row(lake_settings):
    def dau(day: date, country: str, dau: int, wau: int, mau: int) -> dict:
        return {
            "day": day,
            "country_code": country,
            "dau": dau,
            "wau": wau,
            "mau": mau,
            "new_listeners": 0,
            "plays": 0,
            "listening_hours": 0.0,
        }

    write_rows(
        lake_settings,
        DAILY_ACTIVE_USERS,
        [dau(D2, "JP", 2, 3, 4), dau(D2, "ALL", 5, 8, 13), dau(D1, "ALL", 1, 1, 1)],
    )
    assert report.active_users(lake_settings, D2) == ActiveUsers(D2, 5, 8, 13)
    assert report.active_users(lake_settings, D1) == ActiveUsers(D1, 1, 1, 1)
    assert report.active_users(lake_settings, date(2026, 11, 1)) is None


def test_worst_skip_rates_by_scope_firmer_rate_first(lake_settings):
    def rate(day: date, scope: str, subject: str, plays: int, skips: int) -> dict:
        return {
            "day": day,
            "scope": scope,
            "subject_id": subject,
            "genre": subject if scope == "genre" else "rock",
            "plays": plays,
            "skips": skips,
            "skip_rate": skips / plays,
        }

    write_rows(
        lake_settings,
        SKIP_RATES,
        [
            rate(D2, "genre", "jazz", 4, 1),  # 0.25
            rate(D2, "genre", "rock", 10, 5),  # 0.5, more plays than pop
            rate(D2, "genre", "pop", 2, 1),  # 0.5
            rate(D2, "genre", "folk", 3, 3),  # 1.0
            rate(D2, "song", "s-1", 1, 1),  # another scope
            rate(D1, "genre", "metal", 1, 1),  # another day
        ],
    )
    assert report.worst_skip_rates(lake_settings, D2, 3) == [
        SkipRate("folk", 3, 3, 1.0),
        SkipRate("rock", 10, 5, 0.5),
        SkipRate("pop", 2, 1, 0.5),
    ]
    assert report.worst_skip_rates(lake_settings, D2, 5, scope="song") == [
        SkipRate("s-1", 1, 1, 1.0)
    ]


def test_quality_and_runs_since_a_time(lake_settings):
    def check(table: str, name: str, passed: bool, at: datetime) -> dict:
        return {
            "run_id": "r",
            "table_name": table,
            "day": D2,
            "check_name": name,
            "passed": passed,
            "rows_checked": 10,
            "failing_rows": 0 if passed else 1,
            "checked_at": at,
        }

    later = T0 + timedelta(minutes=5)
    write_rows(
        lake_settings,
        QUALITY_RESULTS,
        [
            check("silver.plays", "unique(event_id)", False, T0 - timedelta(seconds=1)),  # before
            check("silver.plays", "unique(event_id)", True, T0),
            check("silver.plays", "not_null", True, later),
            check("gold.skip_rates", "in_range(skip_rate)", False, later),
            check("gold.skip_rates", "in_range(skip_rate)", False, later),
            check("gold.skip_rates", "unique", True, later),
        ],
    )
    assert report.quality_summary(lake_settings, T0) == [
        TableChecks("gold.skip_rates", 1, 2, ("in_range(skip_rate)",)),
        TableChecks("silver.plays", 2, 0, ()),
    ]

    def run(table: str, day: date, rows: int, seconds: float, finished: datetime) -> dict:
        return {
            "run_id": "r",
            "job": table,
            "table_name": table,
            "day": day,
            "delta_version": 1,
            "rows_in": rows,
            "rows_out": rows,
            "seconds": seconds,
            "finished_at": finished,
        }

    write_rows(
        lake_settings,
        JOB_RUNS,
        [
            run("silver.plays", D1, 1000, 9.0, T0 - timedelta(hours=1)),  # an earlier build
            run("dims.songs", D2, 40, 1.5, T0),
            run("silver.plays", D1, 30, 2.0, T0 + timedelta(seconds=10)),
            run("silver.plays", D2, 12, 1.25, T0 + timedelta(seconds=20)),
        ],
    )
    assert report.runs_summary(lake_settings, T0) == [
        TableRuns("dims.songs", 1, 40, 1.5),
        TableRuns("silver.plays", 2, 42, 3.25),
    ]


def test_an_empty_lake_gives_empty_results(lake_settings):
    assert report.bronze_days(lake_settings) == []
    assert report.top_songs(lake_settings, D2, 10) == []
    assert report.active_users(lake_settings, D2) is None
    assert report.worst_skip_rates(lake_settings, D2) == []
    assert report.quality_summary(lake_settings, T0) == []
    assert report.runs_summary(lake_settings, T0) == []
