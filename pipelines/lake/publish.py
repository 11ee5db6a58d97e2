"""Publishing the lake's top songs to PostgreSQL, where the listener API reads them.

Input: the latest built day of ``gold.artist_top_songs`` (read with delta-rs: at most
artists x ``lake.top_songs_per_artist`` rows, no Spark job needed) and the catalog's
``songs`` table. Output: PostgreSQL's ``artist_top_songs`` (``encore.db.schema``), which
``GET /api/v1/artists/{id}/top-songs`` reads, replaced whole in one transaction: readers see
the previous snapshot or the new one, never a mix, and an artist or song that left the lake's
day leaves PostgreSQL. ``computed_at`` is the end of the published day (00:00 UTC after it).

A row whose song is not the catalog's (gone since the dimensions were copied, or now under
another artist) is skipped and counted (a warning, and ``rows_in - rows_out`` in the audit):
the API joins the catalog and could not show it. Ranks stay the lake's.

Schedule: the last job of ``encore lake build``, once per build (a snapshot job): it runs
only after every other job and its quality checks passed, so a failing table publishes
nothing. Running it twice publishes the same rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from encore.delta import open_delta, read_delta
from encore.settings import Settings
from encore.tables import ARTIST_TOP_SONGS
from pipelines.lake.audit import RunRecord

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

TARGET = "postgres.artist_top_songs"
"""The audit's name of the published table."""
PUBLISHED_COLUMNS = ("artist_id", "song_id", "rank", "plays", "window_days")


@dataclass(frozen=True)
class LakeTopSongs:
    """One built day of ``gold.artist_top_songs``."""

    day: date
    delta_version: int
    rows: list[dict]
    """``PUBLISHED_COLUMNS`` of each row."""


def read_latest_top_songs(settings: Settings) -> LakeTopSongs | None:
    """The latest day of ``gold.artist_top_songs``; None while it has no day (not built, or
    no plays yet)."""
    table = open_delta(settings, ARTIST_TOP_SONGS)
    if table is None:
        return None
    # the day partitions come from the Delta log: no data file is read to find the latest
    days = {p["day"] for p in table.partitions() if p.get("day")}
    if not days:
        return None
    latest = date.fromisoformat(max(days))
    rows = read_delta(table, list(PUBLISHED_COLUMNS), [("day", "=", latest)]).to_pylist()
    return LakeTopSongs(latest, table.version(), rows)


def day_end(day: date) -> datetime:
    """00:00 UTC after ``day``: when its last play could have started."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def replace_top_songs(connection: Connection, rows: list[dict], computed_at: datetime) -> int:
    """Make ``artist_top_songs`` hold exactly ``rows`` whose song is the catalog's (by song
    and artist); the number of rows it holds after. Call inside a transaction."""
    from sqlalchemy import text

    # serialises concurrent publishers (each would delete what the other has not committed,
    # then collide on the key); readers are not blocked
    connection.execute(text("LOCK TABLE artist_top_songs IN SHARE ROW EXCLUSIVE MODE"))
    connection.execute(
        text(
            "CREATE TEMPORARY TABLE lake_top_songs (artist_id VARCHAR(32), "
            "song_id VARCHAR(32), rank SMALLINT, plays BIGINT, window_days SMALLINT) "
            "ON COMMIT DROP"
        )
    )
    if rows:
        connection.execute(
            text(
                "INSERT INTO lake_top_songs VALUES "
                "(:artist_id, :song_id, :rank, :plays, :window_days)"
            ),
            rows,
        )
    connection.execute(text("DELETE FROM artist_top_songs"))
    inserted = connection.execute(
        text(
            "INSERT INTO artist_top_songs "
            "(artist_id, song_id, rank, plays, window_days, computed_at) "
            "SELECT l.artist_id, l.song_id, l.rank, l.plays, l.window_days, :computed_at "
            "FROM lake_top_songs l "
            "JOIN songs s ON s.song_id = l.song_id AND s.artist_id = l.artist_id"
        ),
        {"computed_at": computed_at},
    )
    return inserted.rowcount


def run(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Publish the latest built day of ``gold.artist_top_songs`` to PostgreSQL.

    ``spark`` is unused (delta-rs reads the few rows); ``day`` is the build's last day. The
    record carries the published lake day and the lake table's Delta version it came from.
    Nothing is published (no record) while the lake table has no day.
    """
    from encore.db import create_engine

    started = time.monotonic()
    latest = read_latest_top_songs(settings)
    if latest is None:
        log.warning("%s has no built day: nothing published", ARTIST_TOP_SONGS.qualified_name)
        return []
    engine = create_engine(settings, pool_size=1)
    try:
        with engine.begin() as connection:
            published = replace_top_songs(connection, latest.rows, day_end(latest.day))
    finally:
        engine.dispose()
    skipped = len(latest.rows) - published
    if skipped:
        log.warning(
            "%s %s: %d of %d rows skipped, their song is not the catalog's (by song and artist)",
            ARTIST_TOP_SONGS.qualified_name,
            latest.day,
            skipped,
            len(latest.rows),
        )
    return [
        RunRecord(
            table=TARGET,
            day=latest.day,
            delta_version=latest.delta_version,
            rows_in=len(latest.rows),
            rows_out=published,
            seconds=round(time.monotonic() - started, 3),
        )
    ]
