"""The feature store's daily snapshots: per listener, per song and per artist, as known at the
end of a day. Feast reads them offline (point-in-time joins) and materialises the newest day
to the online store (``features/definitions.py``).

Input: ``silver.plays`` (the 28 days ending on the day for listeners and artists, 7 for
songs), ``dims.songs`` and ``dims.artists`` (their current rows). Output: one day of
``features.listener_activity`` (:func:`run_listener_activity`),
``features.song_activity`` (:func:`run_song_activity`) and ``features.artist_popularity``
(:func:`run_artist_popularity`), each replaced by ``writing.replace_day``. Schedule:
``encore lake build``, after gold and training, before publishing.

Decisions:

* **Known at the end of the day**: ``event_timestamp`` is the next day's 00:00 UTC, so a
  training example at time T only sees features of days that ended before T.
* **Listening, not likes**: a ``like`` counts in no play, listener, skip or rank here (as in
  gold).
* **Every catalog song and artist**, played or not (zeros, null rates): a new song still has
  its age and genre for a cold-start ranking. Songs and artists seen in the plays but unknown
  to the dimensions are kept too; plays of songs without an artist count for no artist.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from encore.settings import Settings
from encore.tables import (
    ARTIST_POPULARITY,
    DIM_ARTISTS,
    DIM_SONGS,
    LISTENER_ACTIVITY,
    SONG_ACTIVITY,
)
from pipelines.lake.audit import RunRecord
from pipelines.lake.gold.listeners import listening_plays, most_frequent
from pipelines.lake.writing import read_table, replace_day

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

WEEK_DAYS = 7
MONTH_DAYS = 28
UNKNOWN_ARTIST = "unknown"
"""``song_activity.artist_id`` of a song neither the dimensions nor its plays attribute."""


def window_start(day: date, window_days: int) -> date:
    """The first day of the ``window_days`` days ending on ``day`` (both included)."""
    return day - timedelta(days=window_days - 1)


def _feature_columns(day: date) -> list[Column]:
    """``feature_date`` and ``event_timestamp`` (the next day's 00:00 UTC) of ``day``."""
    from pyspark.sql import functions as F

    known_at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return [
        F.lit(day).alias("feature_date"),
        # from epoch seconds: the same instant whatever the session's time zone
        F.timestamp_seconds(F.lit(int(known_at.timestamp()))).alias("event_timestamp"),
    ]


def _count(condition: Column) -> Column:
    from pyspark.sql import functions as F

    return F.count(F.when(condition, 1))


def _rate(part: str, whole: str) -> Column:
    """``part / whole``, null when ``whole`` is 0."""
    from pyspark.sql import functions as F

    return F.when(F.col(whole) > 0, F.col(part) / F.col(whole))


# -- listener_activity ----------------------------------------------------------------------


def top_two_genres(plays: DataFrame) -> DataFrame:
    """Per ``user_id``: ``top_genre_28d``, ``second_genre_28d`` (by plays, ties by name) and
    the top genre's play count ``top_genre_plays``; plays without a genre are not counted."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = plays.where(F.col("genre").isNotNull()).groupBy("user_id", "genre").count()
    order = Window.partitionBy("user_id").orderBy(F.col("count").desc(), F.col("genre"))
    ranked = counts.withColumn("place", F.row_number().over(order)).where(F.col("place") <= 2)
    first, second = F.col("place") == 1, F.col("place") == 2
    return ranked.groupBy("user_id").agg(
        F.max(F.when(first, F.col("genre"))).alias("top_genre_28d"),
        F.max(F.when(second, F.col("genre"))).alias("second_genre_28d"),
        F.max(F.when(first, F.col("count"))).alias("top_genre_plays"),
    )


def listener_activity(spark: SparkSession, settings: Settings, day: date) -> tuple[DataFrame, int]:
    """The day's rows of ``features.listener_activity`` and the silver rows read."""
    from pyspark.sql import functions as F

    plays = listening_plays(spark, settings, window_start(day, MONTH_DAYS), day)
    in_week = F.col("event_date") >= F.lit(window_start(day, WEEK_DAYS))
    totals = plays.groupBy("user_id").agg(
        _count(in_week).alias("plays_7d"),
        _count(in_week & F.col("skipped")).alias("skips_7d"),
        _count(in_week & F.col("completed")).alias("completed_7d"),
        F.count(F.lit(1)).alias("plays_28d"),
        _count(F.col("skipped")).alias("skips_28d"),
        _count(F.col("completed")).alias("completed_28d"),
        F.countDistinct("artist_id").alias("distinct_artists_28d"),
        F.countDistinct("local_hour").alias("active_hours_28d"),
        F.max("start_time").alias("last_played_at"),
    )
    peak_hour = most_frequent(plays, "user_id", "local_hour").withColumnRenamed(
        "local_hour", "peak_local_hour_28d"
    )
    rows = (
        totals.join(top_two_genres(plays), "user_id", "left")
        .join(peak_hour, "user_id", "left")
        .select(
            *_feature_columns(day),
            "user_id",
            "plays_7d",
            _rate("skips_7d", "plays_7d").alias("skip_rate_7d"),
            _rate("completed_7d", "plays_7d").alias("completion_rate_7d"),
            "plays_28d",
            _rate("skips_28d", "plays_28d").alias("skip_rate_28d"),
            _rate("completed_28d", "plays_28d").alias("completion_rate_28d"),
            "distinct_artists_28d",
            "top_genre_28d",
            "second_genre_28d",
            # share of all the listener's plays, those without a genre included
            _rate("top_genre_plays", "plays_28d").alias("top_genre_share_28d"),
            "peak_local_hour_28d",
            "active_hours_28d",
            "last_played_at",
        )
    )
    return rows, plays.count()


def run_listener_activity(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``features.listener_activity`` for ``day``."""
    started = time.monotonic()
    rows, rows_in = listener_activity(spark, settings, day)
    return [replace_day(spark, settings, LISTENER_ACTIVITY, rows, day, rows_in, started)]


# -- song_activity --------------------------------------------------------------------------


def song_activity(spark: SparkSession, settings: Settings, day: date) -> tuple[DataFrame, int]:
    """The day's rows of ``features.song_activity`` and the rows read (silver and dims)."""
    from pyspark.sql import functions as F

    plays = listening_plays(spark, settings, window_start(day, WEEK_DAYS), day)
    songs = read_table(spark, settings, DIM_SONGS).select(
        "song_id",
        F.col("artist_id").alias("known_artist"),
        F.col("genre").alias("known_genre"),
        "release_date",
    )
    on_day = F.col("event_date") == F.lit(day)
    played = plays.groupBy("song_id").agg(
        # one value per song; max keeps the key unique even if silver's copies disagree
        F.max("artist_id").alias("played_artist"),
        F.max("genre").alias("played_genre"),
        _count(on_day).alias("plays_1d"),
        _count(on_day & F.col("skipped")).alias("skips_1d"),
        F.count(F.lit(1)).alias("plays_7d"),
        F.countDistinct("user_id").alias("listeners_7d"),
        _count(F.col("skipped")).alias("skips_7d"),
    )
    zero = F.lit(0)
    age = F.datediff(F.lit(day), F.col("release_date"))
    rows = songs.join(played, "song_id", "full").select(
        *_feature_columns(day),
        "song_id",
        F.coalesce("known_artist", "played_artist", F.lit(UNKNOWN_ARTIST)).alias("artist_id"),
        F.coalesce("known_genre", "played_genre").alias("genre"),
        F.coalesce("plays_1d", zero).alias("plays_1d"),
        _rate("skips_1d", "plays_1d").alias("skip_rate_1d"),
        F.coalesce("plays_7d", zero).alias("plays_7d"),
        F.coalesce("listeners_7d", zero).alias("listeners_7d"),
        _rate("skips_7d", "plays_7d").alias("skip_rate_7d"),
        # a song announced before its release (pre-saves) is 0 days old, never negative
        F.when(F.col("release_date").isNotNull(), F.greatest(age, zero)).alias("age_days"),
    )
    return rows, plays.count() + songs.count()


def run_song_activity(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``features.song_activity`` for ``day``."""
    started = time.monotonic()
    rows, rows_in = song_activity(spark, settings, day)
    return [replace_day(spark, settings, SONG_ACTIVITY, rows, day, rows_in, started)]


# -- artist_popularity ----------------------------------------------------------------------


def artist_popularity(spark: SparkSession, settings: Settings, day: date) -> tuple[DataFrame, int]:
    """The day's rows of ``features.artist_popularity`` and the rows read (silver and dims).

    ``popularity_rank_28d`` numbers every artist 1..N by plays over 28 days, ties broken by
    ``artist_id`` (no shared ranks); artists without plays come last.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    plays = listening_plays(spark, settings, window_start(day, MONTH_DAYS), day)
    artists = read_table(spark, settings, DIM_ARTISTS).select("artist_id")
    in_week = F.col("event_date") >= F.lit(window_start(day, WEEK_DAYS))
    played = (
        plays.where(F.col("artist_id").isNotNull())
        .groupBy("artist_id")
        .agg(
            _count(in_week).alias("plays_7d"),
            F.count(F.lit(1)).alias("plays_28d"),
            F.countDistinct("user_id").alias("listeners_28d"),
        )
    )
    zero = F.lit(0)
    totals = artists.join(played, "artist_id", "full").select(
        "artist_id",
        F.coalesce("plays_7d", zero).alias("plays_7d"),
        F.coalesce("plays_28d", zero).alias("plays_28d"),
        F.coalesce("listeners_28d", zero).alias("listeners_28d"),
    )
    # one window over every artist: a catalog's artists fit one partition
    order = Window.orderBy(F.col("plays_28d").desc(), F.col("artist_id"))
    rows = totals.select(
        *_feature_columns(day),
        "*",
        F.row_number().over(order).alias("popularity_rank_28d"),
    )
    return rows, plays.count() + artists.count()


def run_artist_popularity(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``features.artist_popularity`` for ``day``."""
    started = time.monotonic()
    rows, rows_in = artist_popularity(spark, settings, day)
    return [replace_day(spark, settings, ARTIST_POPULARITY, rows, day, rows_in, started)]
