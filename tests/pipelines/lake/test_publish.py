"""Publishing top songs to PostgreSQL, read back through the listener API's own read.

A fresh database with a small catalog; silver plays of its real songs (and of one song the
catalog no longer has), gold built with a one-day window, then published: the API must
answer with the lake's ranks and counts, a second publish must change nothing, and after a
day where a song and an artist drop out they must be gone from PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from encore.db import create_engine
from encore.settings import Settings
from encore.tables import SILVER_PLAYS
from pipelines.lake import publish
from pipelines.lake.gold import songs
from streaming_api.catalog.load import load_catalog
from streaming_api.catalog.reads import read_top_songs
from tests.conftest import fresh_database
from tests.pipelines.lake.conftest import write_rows

pytestmark = [pytest.mark.spark, pytest.mark.integration]

D = date(2026, 11, 30)
GONE_SONG = "so-00000000000000ff"
"""A song the dimensions knew but the catalog no longer has."""


def play(n: int, song: str, artist: str, day: date) -> dict:
    start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(minutes=n)
    return {
        "event_id": f"e{day}-{n}",
        "user_id": f"u{n}",
        "song_id": song,
        "start_time": start,
        "end_time": start + timedelta(minutes=3),
        "ms_played": 180_000,
        "event_type": "complete",
        "device_type": "web",
        "country_code": "DE",
        "event_date": day,
        "ingested_at": start,
        "artist_id": artist,
        "genre": "rock",
        "song_known": True,
        "user_known": True,
        "completed": True,
        "skipped": False,
        "local_hour": 10,
    }


def build_and_publish(spark, settings: Settings, day: date):
    songs.run_daily_song_plays(spark, settings, day)
    songs.run_artist_top_songs(spark, settings, day)
    return publish.run(spark, settings, day)


def published(settings: Settings) -> list[tuple]:
    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        return connection.execute(
            "SELECT artist_id, song_id, rank, plays, window_days, computed_at "
            "FROM artist_top_songs ORDER BY artist_id, rank"
        ).fetchall()


def test_publish_replaces_postgres_top_songs_the_api_reads(spark, lake_settings: Settings):
    database = fresh_database(lake_settings, "lake_publish")
    settings = database.model_copy(
        update={
            "lake": lake_settings.lake.model_copy(
                update={"top_songs_window_days": 1, "top_songs_per_artist": 3}
            )
        }
    )
    load_catalog(settings, artists=4, songs_per_artist=4)
    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        catalog = connection.execute(
            "SELECT artist_id, song_id FROM songs ORDER BY artist_id, song_id"
        ).fetchall()
    by_artist: dict[str, list[str]] = {}
    for artist_id, song_id in catalog:
        by_artist.setdefault(artist_id, []).append(song_id)
    # the synthetic catalog gives artists varying numbers of songs: one with three, one other
    a = next(artist for artist, ids in by_artist.items() if len(ids) >= 3)
    a1, a2, a3 = by_artist[a][:3]
    b = next(artist for artist in by_artist if artist != a)
    b1 = by_artist[b][0]
    write_rows(
        settings,
        SILVER_PLAYS,
        [
            *(play(n, GONE_SONG, a, D) for n in range(3)),
            play(3, a1, a, D),
            play(4, a1, a, D),
            play(5, a2, a, D),
            play(6, b1, b, D),
            # the next day: a3 leads, a1 and the whole of artist b drop out
            play(7, a3, a, D + timedelta(days=1)),
            play(8, a3, a, D + timedelta(days=1)),
            play(9, a2, a, D + timedelta(days=1)),
        ],
    )

    [record] = build_and_publish(spark, settings, D)
    # the lake ranks the gone song first (3 plays); it is skipped, the others keep their ranks
    assert (record.table, record.day, record.rows_in, record.rows_out) == (
        "postgres.artist_top_songs",
        D,
        4,
        3,
    )
    end = datetime(2026, 12, 1, tzinfo=UTC)
    first = sorted([(a, a1, 2, 2, 1, end), (a, a2, 3, 1, 1, end), (b, b1, 1, 1, 1, end)])
    assert published(settings) == first

    engine = create_engine(settings)
    try:
        top = read_top_songs(engine, a)
        assert (top.source, top.window_days, top.computed_at) == ("plays", 1, end)
        assert [(s.rank, s.id, s.plays) for s in top.songs] == [(2, a1, 2), (3, a2, 1)]

        publish.run(spark, settings, D)  # again: the same rows
        assert published(settings) == first

        build_and_publish(spark, settings, D + timedelta(days=1))
        later = end + timedelta(days=1)
        assert published(settings) == [(a, a3, 1, 2, 1, later), (a, a2, 2, 1, 1, later)]
        top = read_top_songs(engine, a)
        assert [(s.rank, s.id, s.plays) for s in top.songs] == [(1, a3, 2), (2, a2, 1)]
        assert read_top_songs(engine, b).source == "catalog"
    finally:
        engine.dispose()
