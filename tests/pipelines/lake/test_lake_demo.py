"""The lake step of ``encore demo`` for real: a tiny bronze and catalog, ``encore lake build``
in a child process (its own Spark JVM), the printed summary and PostgreSQL's published
top songs; and the two ways it stops early (no bronze, a failing build)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import psycopg
import pytest

from encore.errors import EncoreError
from encore.settings import Settings
from encore.tables import PLAY_EVENTS
from pipelines.lake import demo, report
from pipelines.lake.report import SongPlays
from streaming_api.catalog.load import load_catalog
from tests.conftest import fresh_database
from tests.pipelines.lake.conftest import write_rows
from tests.pipelines.lake.test_silver import at, event

D = date(2026, 11, 30)


def catalog(settings: Settings) -> list[tuple[str, str, str, str]]:
    """(song_id, title, artist_id, artist name) of the catalog, by artist then song."""
    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        return connection.execute(
            "SELECT s.song_id, s.title, s.artist_id, a.name FROM songs s "
            "JOIN artists a USING (artist_id) ORDER BY s.artist_id, s.song_id"
        ).fetchall()


# minutes, not seconds: the child's own JVM start and all thirteen jobs with their checks
@pytest.mark.spark
@pytest.mark.slow
def test_the_step_builds_every_bronze_day_and_publishes_top_songs(lake_settings, capsys):
    settings = fresh_database(lake_settings, "lake_demo")
    load_catalog(settings, artists=2, songs_per_artist=3)
    songs = catalog(settings)
    (s1, title1, _, artist1), (s2, title2, _, artist2) = songs[0], songs[-1]  # two artists
    write_rows(
        settings,
        PLAY_EVENTS,
        [
            event("e-1", "u-1", s1, at(D, 9, 0), 40_000),
            event("e-2", "u-2", s1, at(D, 9, 5), 40_000, event_type="complete"),
            event("e-3", "u-1", s1, at(D, 10, 0), 5_000, event_type="skip"),
            event("e-4", "u-2", s2, at(D, 11, 0), 40_000, country="US"),
            event("e-5", "u-3", "s-not-in-catalog", at(D, 12, 0), 40_000),
        ],
    )
    since = datetime.now(UTC)

    demo.run_demo_step(settings)

    # s1: 3 listening events over JP; s2 and the unknown song 1 each (ids break the tie)
    assert report.top_songs(settings, D, 3) == sorted(
        [
            SongPlays(s1, title1, artist1, 3),
            SongPlays(s2, title2, artist2, 1),
            SongPlays("s-not-in-catalog", None, None, 1),
        ],
        key=lambda s: (-s.plays, s.song_id),
    )
    runs = {r.table: r for r in report.runs_summary(settings, since)}
    assert runs["silver.plays"].rows_out == 5
    assert runs["dims.songs"].rows_out == len(songs)
    assert runs["postgres.artist_top_songs"].rows_out == 2  # the unknown song is not published
    assert all(c.failed == 0 for c in report.quality_summary(settings, since))
    assert demo.published_top_songs(settings) == 2
    assert report.active_users(settings, D) == report.ActiveUsers(D, 3, 3, 3)

    printed = capsys.readouterr().err
    assert f"built 1 day(s), {D} .. {D} (1 with events in bronze)" in printed
    assert "listeners on 2026-11-30: DAU 3, WAU 3, MAU 3" in printed
    assert "published to PostgreSQL: 2 rows in artist_top_songs" in printed
    assert (settings.home / "logs" / "lake-build.log").exists()


def test_no_bronze_means_nothing_to_build(lake_settings, capsys):
    demo.run_demo_step(lake_settings)
    assert "bronze.play_events holds no events: nothing to build" in capsys.readouterr().err


def test_a_failing_build_names_its_log_and_shows_its_end(lake_settings, capsys):
    # a reversed range: the real `encore lake build` refuses it before starting Spark
    with pytest.raises(EncoreError, match=r"failed \(exit 1\); log: .*lake-build\.log"):
        demo.build_lake(lake_settings, D, date(2026, 11, 1))
    assert "the range starts after it ends" in capsys.readouterr().err
