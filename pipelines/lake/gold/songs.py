"""Gold tables about songs: plays per song and day, each artist's top songs, skip rates and
genre trends. Aggregates only: no user ids and no listener keys in any of them.

Plays are listening events (``complete``, ``skip``, ``play``); a ``like`` is an action on a
song, not a listening (as in ``silver.sessions``): ``daily_song_plays`` counts likes in a
column of their own, the other tables leave them out.

Input: ``silver.plays``, the day's partition. The rolling figures read earlier days of gold
tables instead of re-reading silver (a day of gold is a few rows per song or genre, a day of
silver is every play): ``artist_top_songs`` sums ``gold.daily_song_plays`` over its window,
``genre_trends`` sums its own 13 earlier days.
Output: ``gold.daily_song_plays``, ``gold.artist_top_songs``, ``gold.skip_rates`` and
``gold.genre_trends`` (``encore.tables``), each day replaced by ``writing.replace_day``.
Schedule: ``encore lake build``, daily, after silver; ``artist_top_songs`` after
``daily_song_plays`` (the build runs every day of a job before the next job, so the window's
days exist), and a day's ``genre_trends`` after its earlier days.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import TYPE_CHECKING

from encore.settings import Settings
from encore.tables import (
    ARTIST_TOP_SONGS,
    DAILY_SONG_PLAYS,
    GENRE_TRENDS,
    SILVER_PLAYS,
    SKIP_RATES,
)
from pipelines.lake.audit import RunRecord
from pipelines.lake.writing import read_table, replace_day

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

ALL_COUNTRIES = "ALL"
"""``genre_trends.country_code`` of the rows over every country (a listener counts once)."""
UNKNOWN_GENRE = "unknown"
"""The genre of a play whose song is not in the catalog."""
TREND_DAYS = 7
LIKE = "like"
"""``genre_trends`` compares the 7 days ending on the day with the 7 days before them."""


def _day(day: date) -> Column:
    from pyspark.sql import functions as F

    return F.lit(day)


def _listening() -> Column:
    """True for a listening event, false for a like."""
    from pyspark.sql import functions as F

    return F.col("event_type") != LIKE


def _genre() -> Column:
    from pyspark.sql import functions as F

    return F.coalesce(F.col("genre"), F.lit(UNKNOWN_GENRE)).alias("genre")


def plays_of_day(spark: SparkSession, settings: Settings, day: date) -> DataFrame:
    """The day's ``silver.plays`` (its partition only)."""
    from pyspark.sql import functions as F

    return read_table(spark, settings, SILVER_PLAYS).where(F.col("event_date") == _day(day))


# -- daily_song_plays -----------------------------------------------------------------------


def daily_song_plays(plays: DataFrame, day: date) -> DataFrame:
    """Per country, device and song: plays, likes, distinct listeners, completions, skips,
    time played. A song only liked that day has a row with 0 plays."""
    from pyspark.sql import functions as F

    listening = _listening()
    return (
        plays.groupBy("country_code", "device_type", "song_id")
        .agg(
            # one value per song; max keeps the key unique even if the dimensions changed
            F.max("artist_id").alias("artist_id"),
            F.max("genre").alias("genre"),
            F.max("song_known").alias("song_known"),
            F.count(F.when(listening, 1)).alias("plays"),
            F.count(F.when(~listening, 1)).alias("likes"),
            F.countDistinct(F.when(listening, F.col("user_id"))).alias("listeners"),
            # a like is never completed nor skipped and plays 0 ms: these sums need no filter
            F.sum(F.col("completed").cast("long")).alias("completed"),
            F.sum(F.col("skipped").cast("long")).alias("skips"),
            F.sum("ms_played").alias("ms_played"),
        )
        .withColumn("day", _day(day))
    )


def run_daily_song_plays(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``gold.daily_song_plays`` for ``day``."""
    started = time.monotonic()
    plays = plays_of_day(spark, settings, day)
    frame = daily_song_plays(plays, day)
    return [replace_day(spark, settings, DAILY_SONG_PLAYS, frame, day, plays.count(), started)]


# -- artist_top_songs -----------------------------------------------------------------------


def window_start(day: date, window_days: int) -> date:
    """The first day of the ``window_days`` days ending on ``day`` (both included)."""
    return day - timedelta(days=window_days - 1)


def artist_top_songs(
    song_plays: DataFrame, day: date, window_days: int, per_artist: int
) -> DataFrame:
    """Each artist's ``per_artist`` most played songs over the window ending on ``day``,
    ranked 1..N by plays, ties broken by song id; songs unknown to the catalog (no artist)
    are left out.

    ``song_plays`` is ``gold.daily_song_plays``; only the window's days are read.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    in_window = F.col("day").between(_day(window_start(day, window_days)), _day(day))
    totals = (
        song_plays.where(in_window & F.col("song_known") & F.col("artist_id").isNotNull())
        .groupBy("artist_id", "song_id")
        .agg(F.sum("plays").alias("plays"))
    )
    order = Window.partitionBy("artist_id").orderBy(F.col("plays").desc(), F.col("song_id"))
    return (
        totals.withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= per_artist)
        .withColumn("day", _day(day))
        .withColumn("window_days", F.lit(window_days))
    )


def run_artist_top_songs(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``gold.artist_top_songs`` for ``day`` from ``gold.daily_song_plays``."""
    from pyspark.sql import functions as F

    started = time.monotonic()
    window_days = settings.lake.top_songs_window_days
    song_plays = read_table(spark, settings, DAILY_SONG_PLAYS).where(
        F.col("day").between(_day(window_start(day, window_days)), _day(day))
    )
    frame = artist_top_songs(song_plays, day, window_days, settings.lake.top_songs_per_artist)
    return [replace_day(spark, settings, ARTIST_TOP_SONGS, frame, day, song_plays.count(), started)]


# -- skip_rates ----------------------------------------------------------------------------


def skip_rates(plays: DataFrame, day: date) -> DataFrame:
    """Skips over plays per song (scope ``song``, its genre attached) and per genre (scope
    ``genre``); plays of unknown songs count under the genre ``unknown``; likes are left
    out."""
    from pyspark.sql import functions as F

    tagged = plays.where(_listening()).select(
        "song_id", _genre(), F.col("skipped").cast("long").alias("skip")
    )
    counts = [F.count(F.lit(1)).alias("plays"), F.sum("skip").alias("skips")]
    per_song = tagged.groupBy("song_id").agg(F.max("genre").alias("genre"), *counts)
    per_genre = tagged.groupBy("genre").agg(*counts)
    rows = per_song.select(
        F.lit("song").alias("scope"),
        F.col("song_id").alias("subject_id"),
        "genre",
        "plays",
        "skips",
    ).unionByName(
        per_genre.select(
            F.lit("genre").alias("scope"),
            F.col("genre").alias("subject_id"),
            "genre",
            "plays",
            "skips",
        )
    )
    return rows.withColumn("skip_rate", F.col("skips") / F.col("plays")).withColumn(
        "day", _day(day)
    )


def run_skip_rates(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``gold.skip_rates`` for ``day``."""
    started = time.monotonic()
    plays = plays_of_day(spark, settings, day)
    frame = skip_rates(plays, day)
    return [replace_day(spark, settings, SKIP_RATES, frame, day, plays.count(), started)]


# -- genre_trends --------------------------------------------------------------------------


def genre_day(plays: DataFrame) -> DataFrame:
    """Per country and genre, and per genre over every country (``ALL``): plays, distinct
    listeners, and the share of the country's plays; likes are left out."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    tagged = plays.where(_listening()).select("country_code", _genre(), "user_id")
    counts = [F.count(F.lit(1)).alias("plays"), F.countDistinct("user_id").alias("listeners")]
    per_country = tagged.groupBy("country_code", "genre").agg(*counts)
    everywhere = (
        tagged.groupBy("genre").agg(*counts).withColumn("country_code", F.lit(ALL_COUNTRIES))
    )
    rows = per_country.unionByName(everywhere)
    country = Window.partitionBy("country_code")
    return rows.withColumn("share", F.col("plays") / F.sum("plays").over(country))


def genre_trends(today: DataFrame, earlier: DataFrame, day: date) -> DataFrame:
    """``today`` (:func:`genre_day`) with its 7-day trend: plays over the 7 days ending on
    ``day`` against the 7 before, from ``earlier`` (``gold.genre_trends``' own rows of the 13
    days before ``day``; plays add up across days, so its rows are all that is needed).

    ``change_7d`` is ``plays_7d / plays_prev_7d - 1``, null when the earlier week had none.
    """
    from pyspark.sql import functions as F

    recent_from = _day(day - timedelta(days=TREND_DAYS - 1))
    history = earlier.groupBy("country_code", "genre").agg(
        F.sum(F.when(F.col("day") >= recent_from, F.col("plays")).otherwise(0)).alias("recent"),
        F.sum(F.when(F.col("day") < recent_from, F.col("plays")).otherwise(0)).alias("previous"),
    )
    base = F.coalesce(F.col("previous"), F.lit(0))
    return (
        today.join(history, ["country_code", "genre"], "left")
        .withColumn("plays_7d", F.col("plays") + F.coalesce(F.col("recent"), F.lit(0)))
        .withColumn("plays_prev_7d", base)
        .withColumn("change_7d", F.when(base > 0, F.col("plays_7d") / base - 1))
        .withColumn("day", _day(day))
    )


def run_genre_trends(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``gold.genre_trends`` for ``day`` from the day's plays and the table's own 13
    earlier days."""
    from pyspark.sql import functions as F

    started = time.monotonic()
    plays = plays_of_day(spark, settings, day)
    first = day - timedelta(days=2 * TREND_DAYS - 1)
    earlier = read_table(spark, settings, GENRE_TRENDS).where(
        F.col("day").between(_day(first), _day(day - timedelta(days=1)))
    )
    frame = genre_trends(genre_day(plays), earlier, day)
    rows_in = plays.count() + earlier.count()
    return [replace_day(spark, settings, GENRE_TRENDS, frame, day, rows_in, started)]
