"""The song-side gold tables against hand-computed expectations, on real Spark and Delta.

A small silver.plays set over 29 days (written straight into the table): the built day D,
and single plays on chosen earlier days that sit just inside or just outside the rolling
windows (28 days for top songs, 7 + 7 for genre trends). Songs: s1, s2 (artist A, rock), s3
(A, pop), s4 (B, pop) and sx (not in the catalog). The lake is built once for the module;
each test reads one table.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from encore.settings import Settings
from encore.tables import (
    ARTIST_TOP_SONGS,
    DAILY_SONG_PLAYS,
    GENRE_TRENDS,
    SILVER_PLAYS,
    SKIP_RATES,
)
from pipelines.lake.gold import songs
from tests.pipelines.lake.conftest import read_rows, write_rows

pytestmark = [pytest.mark.spark]

D = date(2026, 11, 30)
SONGS = {
    "s1": ("A", "rock"),
    "s2": ("A", "rock"),
    "s3": ("A", "pop"),
    "s4": ("B", "pop"),
    "sx": (None, None),
}


def play(
    n: int,
    user: str,
    country: str,
    song: str,
    day: date,
    skipped: bool = False,
    ms: int = 100_000,
    liked: bool = False,
    device: str = "mobile",
) -> dict:
    """A silver row: a complete, a skip (``skipped``) or a like (``liked``: 0 ms played)."""
    artist, genre = SONGS[song]
    if liked:
        ms = 0
    start = datetime(day.year, day.month, day.day, 12, tzinfo=UTC) + timedelta(minutes=n)
    return {
        "event_id": f"e{n}",
        "user_id": user,
        "song_id": song,
        "start_time": start,
        "end_time": start + timedelta(milliseconds=ms),
        "ms_played": ms,
        "event_type": "like" if liked else "skip" if skipped else "complete",
        "device_type": device,
        "country_code": country,
        "event_date": day,
        "ingested_at": start,
        "artist_id": artist,
        "genre": genre,
        "song_known": artist is not None,
        "user_known": True,
        "completed": not (skipped or liked),
        "skipped": skipped,
        "local_hour": 12,
    }


def ago(days: int) -> date:
    return D - timedelta(days=days)


PLAYS = [
    # the built day D
    play(1, "u1", "SE", "s1", D, ms=200_000),
    play(2, "u1", "SE", "s1", D, skipped=True, ms=5_000, device="desktop"),
    play(3, "u2", "SE", "s1", D, ms=180_000),
    play(4, "u2", "SE", "s2", D, skipped=True, ms=10_000),
    play(5, "u3", "US", "s2", D, ms=150_000),
    play(6, "u3", "US", "s3", D, ms=100_000),
    play(7, "u4", "US", "sx", D, skipped=True, ms=3_000),
    play(8, "u1", "US", "s4", D, ms=120_000),  # u1 in two countries: once in ALL
    # likes: counted apart in daily_song_plays, nowhere else; u5 only likes (no listener)
    play(9, "u5", "SE", "s1", D, liked=True),
    play(30, "u5", "SE", "s4", D, liked=True),  # a song only liked in SE: 0 plays
    # day D-28, one day before the 28-day window: s3 would lead artist A with 6
    *(play(10 + n, "u1", "SE", "s3", ago(28)) for n in range(5)),
    play(20, "u1", "SE", "s4", ago(27)),  # the window's first day: counts for s4
    play(21, "u2", "SE", "s1", ago(14)),  # in 28 days; outside the genre trends' 14 days
    play(22, "u2", "SE", "s2", ago(13)),  # the previous week's first day (rock, SE)
    play(23, "u3", "US", "s4", ago(7)),  # the previous week's last day (pop, US)
    play(24, "u3", "US", "s2", ago(6)),  # the last week's first day (rock, US)
]
PLAY_DAYS = sorted({p["event_date"] for p in PLAYS})


@pytest.fixture(scope="module")
def built(spark, platform: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A lake with PLAYS in silver and the four tables built for every day with plays
    (days without plays have no rows in any of them)."""
    root = Path(tmp_path_factory.mktemp("gold_songs")) / "lake"
    settings = platform.model_copy(
        update={
            "lake": platform.lake.model_copy(update={"root": str(root), "top_songs_per_artist": 2})
        }
    )
    write_rows(settings, SILVER_PLAYS, PLAYS)
    for day in PLAY_DAYS:
        songs.run_daily_song_plays(spark, settings, day)
    for day in [d for d in PLAY_DAYS if d >= ago(14)]:
        songs.run_genre_trends(spark, settings, day)
    songs.run_artist_top_songs(spark, settings, D)
    songs.run_skip_rates(spark, settings, D)
    return settings


def rows_of_day(settings: Settings, table, day: date = D) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k != "day"}
        for r in read_rows(settings, table)
        if r["day"] == day
    ]


def test_daily_song_plays_per_country_device_and_song(built: Settings):
    def row(country, song, plays, listeners, completed, skips, ms, likes=0, device="mobile"):
        artist, genre = SONGS[song]
        return {
            "country_code": country,
            "device_type": device,
            "song_id": song,
            "artist_id": artist,
            "genre": genre,
            "song_known": artist is not None,
            "plays": plays,
            "likes": likes,
            "listeners": listeners,
            "completed": completed,
            "skips": skips,
            "ms_played": ms,
        }

    assert rows_of_day(built, DAILY_SONG_PLAYS) == [
        # u1's skip of s1 was on the desktop: s1 in SE splits by device
        row("SE", "s1", 1, 1, 0, 1, 5_000, device="desktop"),
        row("SE", "s1", 2, 2, 2, 0, 380_000, likes=1),
        row("SE", "s2", 1, 1, 0, 1, 10_000),
        row("SE", "s4", 0, 0, 0, 0, 0, likes=1),
        row("US", "s2", 1, 1, 1, 0, 150_000),
        row("US", "s3", 1, 1, 1, 0, 100_000),
        row("US", "s4", 1, 1, 1, 0, 120_000),
        row("US", "sx", 1, 1, 0, 1, 3_000),
    ]
    assert rows_of_day(built, DAILY_SONG_PLAYS, ago(28)) == [row("SE", "s3", 5, 1, 5, 0, 500_000)]


def test_artist_top_songs_window_edge_ties_and_limit(built: Settings):
    # A: s1 = 3 (D) + 1 (D-14) = 4; s2 = 1 + 1 (D) + 1 (D-13) + 1 (D-6) = 4: tied, s1 first
    # by song id; s3 = 1 (D; its 5 plays of D-28 fall outside) is third: over the limit of 2.
    # B: s4 = 1 (D-27, the window's first day) + 1 (D-7) + 1 (D) = 3. sx has no artist.
    assert rows_of_day(built, ARTIST_TOP_SONGS) == [
        {"artist_id": "A", "song_id": "s1", "rank": 1, "plays": 4, "window_days": 28},
        {"artist_id": "A", "song_id": "s2", "rank": 2, "plays": 4, "window_days": 28},
        {"artist_id": "B", "song_id": "s4", "rank": 1, "plays": 3, "window_days": 28},
    ]


def test_skip_rates_per_song_and_per_genre(built: Settings):
    def row(scope, subject, genre, plays, skips):
        return {
            "scope": scope,
            "subject_id": subject,
            "genre": genre,
            "plays": plays,
            "skips": skips,
            "skip_rate": skips / plays,
        }

    assert rows_of_day(built, SKIP_RATES) == [
        row("genre", "pop", "pop", 2, 0),
        row("genre", "rock", "rock", 5, 2),
        row("genre", "unknown", "unknown", 1, 1),
        row("song", "s1", "rock", 3, 1),
        row("song", "s2", "rock", 2, 1),
        row("song", "s3", "pop", 1, 0),
        row("song", "s4", "pop", 1, 0),
        row("song", "sx", "unknown", 1, 1),
    ]


def test_genre_trends_per_country_and_all(built: Settings):
    def row(country, genre, plays, listeners, share, plays_7d, prev_7d, change):
        return {
            "country_code": country,
            "genre": genre,
            "plays": plays,
            "listeners": listeners,
            "share": share,
            "plays_7d": plays_7d,
            "plays_prev_7d": prev_7d,
            "change_7d": change,
        }

    # last 7 days: D and D-6 (US rock); the 7 before: D-13 (SE rock) and D-7 (US pop); D-14
    # (SE rock) is in neither. ALL counts u1 once although u1 played in SE and US.
    assert rows_of_day(built, GENRE_TRENDS) == [
        row("ALL", "pop", 2, 2, 2 / 8, 2, 1, 1.0),
        row("ALL", "rock", 5, 3, 5 / 8, 6, 1, 5.0),
        row("ALL", "unknown", 1, 1, 1 / 8, 1, 0, None),
        row("SE", "rock", 4, 2, 1.0, 4, 1, 3.0),
        row("US", "pop", 2, 2, 2 / 4, 2, 1, 1.0),
        row("US", "rock", 1, 1, 1 / 4, 2, 0, None),
        row("US", "unknown", 1, 1, 1 / 4, 1, 0, None),
    ]


def test_no_table_holds_a_user_id(built: Settings):
    for table in (DAILY_SONG_PLAYS, ARTIST_TOP_SONGS, SKIP_RATES, GENRE_TRENDS):
        values = {v for row in read_rows(built, table) for v in row.values()}
        assert not values & {"u1", "u2", "u3", "u4", "u5"}, table.qualified_name
        assert not {"user_id", "listener_key"} & set(table.column_names)


def test_a_day_built_twice_keeps_every_table_equal(spark, built: Settings):
    tables = (DAILY_SONG_PLAYS, ARTIST_TOP_SONGS, SKIP_RATES, GENRE_TRENDS)
    before = {t.name: read_rows(built, t) for t in tables}
    records = [
        *songs.run_daily_song_plays(spark, built, D),
        *songs.run_artist_top_songs(spark, built, D),
        *songs.run_skip_rates(spark, built, D),
        *songs.run_genre_trends(spark, built, D),
    ]
    assert {t.name: read_rows(built, t) for t in tables} == before
    # rows in: D's 10 silver rows (8 plays, 2 likes), 8 out (s1 in SE on two devices); top
    # songs read the window's 13 daily rows (8 of D, one of each earlier day but D-28);
    # genre trends also read its own rows of D-13, D-7 and D-6 (a country's and ALL's: 6)
    assert [(r.table, r.rows_in, r.rows_out) for r in records] == [
        ("gold.daily_song_plays", 10, 8),
        ("gold.artist_top_songs", 13, 3),
        ("gold.skip_rates", 10, 8),
        ("gold.genre_trends", 10 + 6, 7),
    ]


def test_a_column_the_registry_added_joins_a_table_an_older_build_created(
    spark, platform: Settings, tmp_path: Path
):
    """A lake built before ``device_type`` was added to daily_song_plays: the next build
    writes its day with the column, and the older day is kept (null device)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    settings = platform.model_copy(
        update={"lake": platform.lake.model_copy(update={"root": str(tmp_path / "lake")})}
    )
    write_rows(settings, SILVER_PLAYS, [p for p in PLAYS if p["event_date"] == D])
    old = DAILY_SONG_PLAYS.arrow_schema()
    old = old.remove(old.get_field_index("device_type"))
    before = {
        "day": ago(40), "country_code": "SE", "song_id": "s1", "artist_id": "A", "genre": "pop",
        "song_known": True, "plays": 4, "likes": 0, "listeners": 2, "completed": 4, "skips": 0,
        "ms_played": 400_000,
    }  # fmt: skip
    write_deltalake(
        DAILY_SONG_PLAYS.path(settings),
        pa.Table.from_pylist([before], schema=old),
        partition_by=["day"],
    )
    songs.run_daily_song_plays(spark, settings, D)
    rows = read_rows(settings, DAILY_SONG_PLAYS, sort_by=("day", "song_id"))
    assert rows[0] == {**before, "device_type": None}
    assert {r["device_type"] for r in rows[1:]} == {"mobile", "desktop"}
    assert sum(r["plays"] + r["likes"] for r in rows[1:]) == len(
        [p for p in PLAYS if p["event_date"] == D]
    )
