"""The feature tables' daily jobs (``features/jobs.py``) from a hand-made silver and dims,
each column against values worked out by hand from the rows below.

The built day D is 2026-04-01: its 28-day window starts 03-05 (D-27), its 7-day window 03-26
(D-6). Silver rows (song: artist, genre):

=====  =================================================  ===================================
who    plays                                              why
=====  =================================================  ===================================
ana    D: s1 complete 10h, s2 skip 10h, s3 complete 18h,   genre tie counts, hour tie, D-8 in
       like s1 11h; D-2: s1 complete 10h;                  28d not 7d, D-28 in neither, a like
       D-8: s1 complete 18h; D-28: s3 complete 9h          nowhere
bo     D-8: s9 (unknown song) skip 7h                      no play in 7d; no genre, no artist
eli    D-6: s9 skip 23h; 03-27: s1 skip 10h;               7d's first day; s8 unknown to dims
       D: s8 (a9, folk, in silver only) complete 1h        but attributed by silver
cy     D: like s3                                          a like only: no row
dag    D-28: s1 complete 9h                                out of the 28 days: no row
=====  =================================================  ===================================

dims.songs: s1 (a1, rock, released 2026-01-01), s2 (a1, pop, no date), s3 (a2, pop, released
2026-04-10, after D), s4 (a3, jazz, 2025-04-01, never played). dims.artists: a1, a2, a3.

Spark runs: the three jobs for D once (module fixture), listener_activity again for D
(idempotence) and once for 04-21 (03-25..04-21: bo's last play has left the window).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from encore.settings import Settings
from encore.tables import (
    ARTIST_POPULARITY,
    DIM_ARTISTS,
    DIM_SONGS,
    LISTENER_ACTIVITY,
    SILVER_PLAYS,
    SONG_ACTIVITY,
)
from features import jobs
from pipelines.lake.privacy import user_level_tables
from tests.pipelines.lake.conftest import artist_row, read_rows, song_row, write_rows

pytestmark = [pytest.mark.spark]

D = date(2026, 4, 1)
KNOWN_AT = datetime(2026, 4, 2, tzinfo=UTC)
SONGS = {
    "s1": ("a1", "rock"),
    "s2": ("a1", "pop"),
    "s3": ("a2", "pop"),
    "s8": ("a9", "folk"),
    "s9": (None, None),
}
_events = iter(range(1, 1000))


def rounded(rows: list[dict]) -> list[dict]:
    """``rows`` with every float rounded to 9 places (rates like 1/3 compare exactly)."""
    return [{k: round(v, 9) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def days_before(n: int) -> date:
    return D - timedelta(days=n)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def play(who: str, day: date, hour: int, song: str, event_type: str) -> dict:
    """One silver play: ``complete`` is completed, ``skip`` skipped, ``like`` neither."""
    artist, genre = SONGS[song]
    start = at(day, hour)
    return {
        "event_id": f"e{next(_events)}",
        "user_id": f"user-{who}",
        "song_id": song,
        "start_time": start,
        "end_time": start + timedelta(minutes=3),
        "ms_played": 0 if event_type == "like" else 180_000,
        "event_type": event_type,
        "device_type": "mobile",
        "country_code": "SE",
        "event_date": day,
        "ingested_at": start,
        "artist_id": artist,
        "genre": genre,
        "song_known": song in ("s1", "s2", "s3"),
        "user_known": True,
        "completed": event_type == "complete",
        "skipped": event_type == "skip",
        "local_hour": hour,
    }


PLAYS = [
    play("ana", D, 10, "s1", "complete"),
    play("ana", D, 10, "s2", "skip"),
    play("ana", D, 18, "s3", "complete"),
    play("ana", D, 11, "s1", "like"),
    play("ana", days_before(2), 10, "s1", "complete"),
    play("ana", days_before(8), 18, "s1", "complete"),
    play("ana", days_before(28), 9, "s3", "complete"),
    play("bo", days_before(8), 7, "s9", "skip"),
    play("eli", days_before(6), 23, "s9", "skip"),
    play("eli", days_before(5), 10, "s1", "skip"),
    play("eli", D, 1, "s8", "complete"),
    play("cy", D, 12, "s3", "like"),
    play("dag", days_before(28), 9, "s1", "complete"),
]
DIM_SONG_ROWS = [
    song_row("s1", "a1", genre="rock", release_date=date(2026, 1, 1)),
    song_row("s2", "a1", genre="pop"),
    song_row("s3", "a2", genre="pop", release_date=date(2026, 4, 10)),
    song_row("s4", "a3", genre="jazz", release_date=date(2025, 4, 1)),
]
DIM_ARTIST_ROWS = [artist_row(a) for a in ("a1", "a2", "a3")]


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory: pytest.TempPathFactory, platform: Settings) -> Settings:
    """A lake with the rows above and the three feature tables built for D."""
    root = Path(tmp_path_factory.mktemp("features")) / "lake"
    settings = platform.model_copy(
        update={"lake": platform.lake.model_copy(update={"root": str(root)})}
    )
    write_rows(settings, SILVER_PLAYS, PLAYS)
    write_rows(settings, DIM_SONGS, DIM_SONG_ROWS)
    write_rows(settings, DIM_ARTISTS, DIM_ARTIST_ROWS)
    for run in (jobs.run_listener_activity, jobs.run_song_activity, jobs.run_artist_popularity):
        (record,) = run(spark, settings, D)
        assert record.day == D
    return settings


def listener(
    user: str,
    week: tuple[int, int, int],
    month: tuple[int, int, int],
    artists: int,
    genres: tuple[str | None, str | None, float | None],
    hours: tuple[int, int],
    last: datetime,
    day: date = D,
) -> dict:
    """An expected row from counts: (plays, skips, completed) over 7 and 28 days."""

    def rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    return {
        "feature_date": day,
        "event_timestamp": datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1),
        "user_id": f"user-{user}",
        "plays_7d": week[0],
        "skip_rate_7d": rate(week[1], week[0]),
        "completion_rate_7d": rate(week[2], week[0]),
        "plays_28d": month[0],
        "skip_rate_28d": rate(month[1], month[0]),
        "completion_rate_28d": rate(month[2], month[0]),
        "distinct_artists_28d": artists,
        "top_genre_28d": genres[0],
        "second_genre_28d": genres[1],
        "top_genre_share_28d": genres[2],
        "peak_local_hour_28d": hours[0],
        "active_hours_28d": hours[1],
        "last_played_at": last,
    }


# ana: 7d = D x3 + D-2 (1 skip, 3 completed); 28d adds D-8; rock 3 (s1 x3) > pop 2;
# hours 10 x3, 18 x2. bo: D-8 only. eli: D-6, 03-27, D; folk 1 = rock 1 -> folk (name);
# hours 23, 10, 1 once each -> 1 (smaller).
ANA = listener("ana", (4, 1, 3), (5, 1, 4), 2, ("rock", "pop", 3 / 5), (10, 2), at(D, 18))
BO = listener("bo", (0, 0, 0), (1, 1, 0), 0, (None, None, None), (7, 1), at(days_before(8), 7))
ELI = listener("eli", (3, 2, 1), (3, 2, 1), 2, ("folk", "rock", 1 / 3), (1, 3), at(D, 1))


def test_listener_activity_of_the_day(built: Settings) -> None:
    assert rounded(read_rows(built, LISTENER_ACTIVITY)) == rounded([ANA, BO, ELI])


def test_song_activity_of_the_day(built: Settings) -> None:
    def row(song_id, artist, genre, day1, week, age):
        """``day1`` = (plays, skips) on D; ``week`` = (plays, listeners, skips) over 7d."""
        return {
            "feature_date": D,
            "event_timestamp": KNOWN_AT,
            "song_id": song_id,
            "artist_id": artist,
            "genre": genre,
            "plays_1d": day1[0],
            "skip_rate_1d": day1[1] / day1[0] if day1[0] else None,
            "plays_7d": week[0],
            "listeners_7d": week[1],
            "skip_rate_7d": week[2] / week[0] if week[0] else None,
            "age_days": age,
        }

    assert rounded(read_rows(built, SONG_ACTIVITY)) == rounded(
        [
            # D, D-2 (ana) and 03-27 (eli, skip); the like is no play; 31 + 28 + 31 days old
            row("s1", "a1", "rock", (1, 0), (3, 2, 1), 90),
            row("s2", "a1", "pop", (1, 1), (1, 1, 1), None),
            # released after D: 0 days old, not -9; the D-28 play is out of the window
            row("s3", "a2", "pop", (1, 0), (1, 1, 0), 0),
            row("s4", "a3", "jazz", (0, 0), (0, 0, 0), 365),
            row("s8", "a9", "folk", (1, 0), (1, 1, 0), None),
            # bo's D-8 play is out of 7 days; eli's D-6 play is in
            row("s9", "unknown", None, (0, 0), (1, 1, 1), None),
        ]
    )


def test_artist_popularity_of_the_day(built: Settings) -> None:
    def row(artist, plays_7d, plays_28d, listeners, rank):
        return {
            "feature_date": D,
            "event_timestamp": KNOWN_AT,
            "artist_id": artist,
            "plays_7d": plays_7d,
            "plays_28d": plays_28d,
            "listeners_28d": listeners,
            "popularity_rank_28d": rank,
        }

    # a1: ana D s1, D s2, D-2, D-8 (28d only), eli 03-27; a2 and a9 tie on 1 play: by id
    assert read_rows(built, ARTIST_POPULARITY) == [
        row("a1", 4, 5, 2, 1),
        row("a2", 1, 1, 1, 2),
        row("a3", 0, 0, 0, 4),
        row("a9", 1, 1, 1, 3),
    ]


def test_rerun_is_idempotent_and_listeners_leave_after_28_days(spark, built: Settings) -> None:
    before = read_rows(built, LISTENER_ACTIVITY)
    jobs.run_listener_activity(spark, built, D)
    assert read_rows(built, LISTENER_ACTIVITY) == before

    # window 03-25..04-21, 7 days from 04-15: bo (03-24) and ana's D-8 are out; ana keeps D
    # and D-2 (rock 2 = pop 2: pop by name), eli all three plays
    later = date(2026, 4, 21)
    jobs.run_listener_activity(spark, built, later)
    rows = [r for r in read_rows(built, LISTENER_ACTIVITY) if r["feature_date"] == later]
    ana = listener(
        "ana", (0, 0, 0), (4, 1, 3), 2, ("pop", "rock", 2 / 4), (10, 2), at(D, 18), later
    )
    eli = listener("eli", (0, 0, 0), (3, 2, 1), 2, ("folk", "rock", 1 / 3), (1, 3), at(D, 1), later)
    assert rounded(rows) == rounded([ana, eli])


def test_listener_features_are_covered_by_erasure() -> None:
    assert LISTENER_ACTIVITY.qualified_name in {t.qualified_name for t in user_level_tables()}
