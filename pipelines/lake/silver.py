"""Silver: bronze's play events de-duplicated over all history, joined and derived; sessions.

Input: ``bronze.play_events`` (the day's partition, and only the ``event_id`` of every
earlier day), ``dims.songs`` and ``dims.users`` (when the dims job has not run yet they are
empty: every song and listener is then unknown, flagged, and kept). Output: one day of
``silver.plays`` (:func:`run_plays`), then one day of ``silver.sessions`` from
``silver.plays`` of the day before, the day and the day after (:func:`run_sessions`).
Schedule: ``encore lake build``, after the dimensions, for every day of the range and every
earlier day that received late events (``pipelines.lake.audit.late_days``).

A day's result depends on bronze and the dimensions only, never on which silver days were
built before, so days can be built, rebuilt and backfilled in any order:

* **De-duplication**: the stream forgets an ``event_id`` after ``flink.dedup_ttl_s``, so
  bronze can hold a replayed event twice. The first arrival wins: a row is dropped when its
  ``event_id`` is on an earlier ``event_date`` partition of bronze, or earlier in its own
  partition (by ``ingested_at``, then ``kafka_partition``, ``kafka_offset``).
* **completed**: ``event_type`` is ``complete``, or ``ms_played >= lake.completed_min_ms``,
  or at least half the song was played (``2 * ms_played >= duration_ms``, when the song is
  known). A ``like`` is an action on a song (ms_played 0), not a listening: never
  completed, never skipped, and no part of a session.
* **skipped**: ``event_type`` is ``skip`` (the listener's own action, however long the song
  played: a skip after 40 s is both completed, i.e. it counts as a stream, and skipped), or
  a ``play`` that stopped before completion. A ``complete`` is never skipped.
* **local_hour**: the hour of ``start_time`` in the main time zone of ``country_code``
  (:func:`country_time_zones`), UTC for a country without one.
* **Sessions**: a listener's listening events (not likes) ordered by ``start_time``; a new
  session starts when a play begins more than ``lake.session_gap_minutes`` after every
  earlier play ended. A session belongs to the UTC day it started on; reading the day
  before and after makes a session that crosses midnight whole on its start day and absent
  from the next. A session of more than a day is seen only within those three days.
"""

from __future__ import annotations

import functools
import time
import zoneinfo
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from encore.settings import Settings
from encore.tables import (
    DIM_SONGS,
    DIM_USERS,
    PLAY_EVENTS,
    SILVER_PLAYS,
    SILVER_SESSIONS,
    Table,
)
from pipelines.lake.audit import RunRecord
from pipelines.lake.writing import read_table, replace_day

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

MAIN_ZONE_OVERRIDES = {
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv",
    "UZ": "Asia/Tashkent",
}
"""Countries whose first zone in ``zone.tab`` is an outlying region (Lord Howe Island,
Fernando de Noronha, Newfoundland, Kaliningrad, Crimea, Samarkand): tzdata lists a
country's zones by geography, not population; these name where most listeners live."""


def _zone_tab() -> str:
    """tzdata's ``zone.tab``: from the ``tzdata`` package, else the system's zoneinfo."""
    try:
        return resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        for folder in zoneinfo.TZPATH:
            path = Path(folder) / "zone.tab"
            if path.exists():
                return path.read_text()
    raise FileNotFoundError("tzdata's zone.tab: neither the tzdata package nor a system copy")


@functools.cache
def country_time_zones() -> dict[str, str]:
    """Each country's main IANA time zone: the first ``zone.tab`` lists for it, except
    :data:`MAIN_ZONE_OVERRIDES`. ``zone.tab`` has one line per country and zone, so every
    country gets a zone of its own name (``zone1970.tab`` folds small countries into a
    neighbour's)."""
    zones: dict[str, str] = {}
    for line in _zone_tab().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        country, _coordinates, zone = line.split("\t")[:3]
        zones.setdefault(country, zone)
    return zones | MAIN_ZONE_OVERRIDES


def local_hour_column(start_time: str = "start_time", country: str = "country_code") -> Column:
    """The hour of ``start_time`` in ``country``'s main time zone (UTC when it has none).

    The zone map travels inside the plan as a literal map (a few hundred entries), so
    every task has it without a join. Needs the session time zone UTC (as
    ``encore.engines.create_spark_session`` sets it): ``from_utc_timestamp`` shifts the
    instant so that its UTC rendering is the local wall time.
    """
    from pyspark.sql import functions as F

    pairs = [F.lit(v) for item in sorted(country_time_zones().items()) for v in item]
    zone = F.coalesce(F.try_element_at(F.create_map(*pairs), F.col(country)), F.lit("UTC"))
    return F.hour(F.from_utc_timestamp(F.col(start_time), zone))


def first_arrivals(day_rows: DataFrame, earlier_event_ids: DataFrame) -> DataFrame:
    """``day_rows`` without the events already seen: the first arrival of each
    ``event_id`` within the day, unless the id is on an earlier day (``earlier_event_ids``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    arrival = Window.partitionBy("event_id").orderBy(
        "ingested_at", "kafka_partition", "kafka_offset"
    )
    first = day_rows.withColumn("_arrival", F.row_number().over(arrival)).where("_arrival = 1")
    return first.drop("_arrival").join(earlier_event_ids, "event_id", "left_anti")


def completed_column(settings: Settings) -> Column:
    """See the module docstring: a complete, or long enough, never a like."""
    from pyspark.sql import functions as F

    event_type, ms_played, duration = F.col("event_type"), F.col("ms_played"), F.col("duration_ms")
    half_the_song = duration.isNotNull() & (ms_played * 2 >= duration)
    long_enough = (ms_played >= settings.lake.completed_min_ms) | half_the_song
    return (event_type != "like") & ((event_type == "complete") | long_enough)


def skipped_column() -> Column:
    """See the module docstring: a skip, or a play stopped before completion."""
    from pyspark.sql import functions as F

    event_type = F.col("event_type")
    return (event_type == "skip") | ((event_type == "play") & ~F.col("completed"))


def with_gained_columns(frame: DataFrame, table: Table) -> DataFrame:
    """``frame`` with the nullable registry columns it lacks, as nulls: a table written before
    the registry gained a column (an optional event field such as ``variant``) reads as if
    every older row had it unset."""
    from pyspark.sql import functions as F

    for column in table.spark_schema().fields:
        if column.nullable and column.name not in frame.columns:
            frame = frame.withColumn(column.name, F.lit(None).cast(column.dataType))
    return frame


def add_gained_columns(spark: SparkSession, settings: Settings, table: Table) -> None:
    """Give an existing ``table`` the nullable registry columns it lacks (at the end, as the
    registry lists them): a day's overwrite with ``replaceWhere`` cannot change the schema."""
    from delta.tables import DeltaTable

    path = table.path(settings)
    if not DeltaTable.isDeltaTable(spark, path):
        return  # replace_day creates it with the registry's schema
    present = set(spark.read.format("delta").load(path).columns)
    gained = [c for c in table.spark_schema().fields if c.nullable and c.name not in present]
    if gained:
        columns = ", ".join(f"`{c.name}` {c.dataType.simpleString()}" for c in gained)
        spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({columns})")


def plays_of_day(spark: SparkSession, settings: Settings, day: date) -> DataFrame:
    """``silver.plays`` rows for ``day``, computed from bronze and the dimensions (bronze's
    ``variant`` is carried as it is)."""
    from pyspark.sql import functions as F

    bronze = with_gained_columns(read_table(spark, settings, PLAY_EVENTS), PLAY_EVENTS)
    day_rows = bronze.where(F.col("event_date") == F.lit(day))
    earlier = bronze.where(F.col("event_date") < F.lit(day)).select("event_id")
    songs = read_table(spark, settings, DIM_SONGS).select(
        "song_id", "artist_id", "album_id", "genre", "duration_ms", F.lit(True).alias("_song")
    )
    users = read_table(spark, settings, DIM_USERS).select("user_id", F.lit(True).alias("_user"))
    return (
        first_arrivals(day_rows, earlier)
        .join(songs, "song_id", "left")
        .join(users, "user_id", "left")
        .withColumn("song_known", F.coalesce("_song", F.lit(False)))
        .withColumn("user_known", F.coalesce("_user", F.lit(False)))
        .withColumn("completed", completed_column(settings))
        .withColumn("skipped", skipped_column())
        .withColumn("local_hour", local_hour_column())
    )


def run_plays(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``silver.plays`` for ``day``; rows in: bronze's rows of the day."""
    from pyspark.sql import functions as F

    started = time.monotonic()
    bronze = read_table(spark, settings, PLAY_EVENTS)
    rows_in = bronze.where(F.col("event_date") == F.lit(day)).count()
    plays = plays_of_day(spark, settings, day)
    add_gained_columns(spark, settings, SILVER_PLAYS)
    return [replace_day(spark, settings, SILVER_PLAYS, plays, day, rows_in, started)]


def sessions_of(plays: DataFrame, gap_minutes: int) -> DataFrame:
    """Every session of ``plays`` (listening events: no likes), one row each, with
    ``silver.sessions``' columns."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_user = Window.partitionBy("user_id").orderBy("start_time", "event_id")
    ended_before = F.max("end_time").over(by_user.rowsBetween(Window.unboundedPreceding, -1))
    silence_us = F.unix_micros(F.col("start_time")) - F.unix_micros(ended_before)
    starts_session = ended_before.isNull() | (silence_us > gap_minutes * 60 * 1_000_000)
    numbered = plays.withColumn("_starts", starts_session.cast("int")).withColumn(
        "_session", F.sum("_starts").over(by_user)
    )
    sessions = numbered.groupBy("user_id", "_session").agg(
        F.min("start_time").alias("session_start"),
        F.max("end_time").alias("session_end"),
        F.count(F.lit(1)).alias("plays"),
        F.sum(F.col("skipped").cast("long")).alias("skips"),
        F.sum(F.col("completed").cast("long")).alias("completed"),
        F.countDistinct("song_id").alias("distinct_songs"),
        # the most frequent value, the alphabetically first of a tie
        F.mode("device_type", True).alias("device_type"),
        F.mode("country_code", True).alias("country_code"),
    )
    start_us = F.unix_micros(F.col("session_start"))
    return sessions.select(
        F.sha2(F.concat_ws("|", "user_id", start_us.cast("string")), 256).alias("session_id"),
        "user_id",
        "session_start",
        "session_end",
        F.to_date("session_start").alias("session_date"),
        ((F.unix_micros("session_end") - start_us) / 1_000_000).alias("length_s"),
        "plays",
        "skips",
        "completed",
        "distinct_songs",
        "device_type",
        "country_code",
    )


def run_sessions(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``silver.sessions`` for the sessions starting on ``day``; rows in: the plays
    (no likes) of the day before, the day and the day after."""
    from pyspark.sql import functions as F

    started = time.monotonic()
    window = (
        read_table(spark, settings, SILVER_PLAYS)
        .where(F.col("event_date").between(day - timedelta(days=1), day + timedelta(days=1)))
        .where(F.col("event_type") != "like")
    )
    rows_in = window.count()
    sessions = sessions_of(window, settings.lake.session_gap_minutes)
    today = sessions.where(F.col("session_date") == F.lit(day))
    return [replace_day(spark, settings, SILVER_SESSIONS, today, day, rows_in, started)]
