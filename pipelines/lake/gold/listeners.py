"""Gold, the listeners' side: daily listening per listener, active listeners, weekly
retention cohorts, and plays per country and device. Pseudonymous: no raw user ids.

Input: ``silver.plays`` (the day; the 28 days ending on it for the active counts) and
``silver.sessions`` (the day), and ``gold.user_daily_listening``'s own history for first
plays and cohorts. Output: one day of ``gold.user_daily_listening``
(:func:`run_user_daily_listening`), ``gold.daily_active_users``
(:func:`run_daily_active_users`), ``gold.retention_cohorts`` (:func:`run_retention_cohorts`)
and ``gold.country_device_breakdown`` (:func:`run_country_device_breakdown`). Schedule:
``encore lake build``, after silver, user_daily_listening first (the two after it read its
history, built for every day of the range before they run).

Decisions:

* **Listening, not likes**: a ``like`` is an action on a song (``ms_played`` 0), as in
  silver's sessions; it counts in no play, listener or active count here. A listener who
  only liked songs on a day has no row that day.
* **Listeners are ``listener_key``** (``pipelines.lake.pseudonyms``): the user id is turned
  into its pseudonym right after the first per-listener aggregation and never written.
* **First plays from gold's own history**: a listener is new on a day when
  ``gold.user_daily_listening`` has no row of them on any earlier day. That table holds one
  small pseudonymous row per listener and active day, so neither the new-listener count nor
  the cohorts re-read all of silver's history. It is only as complete as its own history: a
  lake whose gold starts later than its silver must backfill it from silver's first day.
* **As of the day**: the cohorts use history up to the built day only, so rebuilding an old
  day gives the table it had then, whatever was built since.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import TYPE_CHECKING

from encore.settings import Settings
from encore.tables import (
    COUNTRY_DEVICE_BREAKDOWN,
    DAILY_ACTIVE_USERS,
    RETENTION_COHORTS,
    SILVER_PLAYS,
    SILVER_SESSIONS,
    USER_DAILY_LISTENING,
)
from pipelines.lake.audit import RunRecord
from pipelines.lake.pseudonyms import listener_key_column
from pipelines.lake.writing import read_table, replace_day

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

ALL_COUNTRIES = "ALL"
WEEK_DAYS = 7
MONTH_DAYS = 28
MS_PER_HOUR = 3_600_000


def listening_plays(spark: SparkSession, settings: Settings, first: date, last: date) -> DataFrame:
    """``silver.plays`` from ``first`` to ``last`` (both included), likes left out."""
    from pyspark.sql import functions as F

    return (
        read_table(spark, settings, SILVER_PLAYS)
        .where(F.col("event_date").between(F.lit(first), F.lit(last)))
        .where(F.col("event_type") != "like")
    )


def most_frequent(frame: DataFrame, by: str, value: str) -> DataFrame:
    """Per ``by``: the ``value`` of most rows (ties: the smallest value), named ``value``.

    Null values are not counted; a ``by`` with only nulls is absent from the result.
    """
    from pyspark.sql import functions as F

    counts = frame.where(F.col(value).isNotNull()).groupBy(by, value).count()
    # min over (-count, value): the largest count first, then the alphabetically first value
    best = F.min(F.struct((-F.col("count")).alias("negated_count"), F.col(value)))
    return counts.groupBy(by).agg(best[value].alias(value))


def _count(condition: Column) -> Column:
    from pyspark.sql import functions as F

    return F.sum(F.when(condition, 1).otherwise(0)).cast("long")


def user_daily_listening(
    spark: SparkSession, settings: Settings, day: date
) -> tuple[DataFrame, int]:
    """The day's rows of ``gold.user_daily_listening`` and the rows read from silver."""
    from pyspark.sql import functions as F

    plays = listening_plays(spark, settings, day, day)
    sessions = read_table(spark, settings, SILVER_SESSIONS).where(
        F.col("session_date") == F.lit(day)
    )
    totals = plays.groupBy("user_id").agg(
        F.count("*").alias("plays"),
        _count(F.col("skipped")).alias("skips"),
        _count(F.col("completed")).alias("completed"),
        F.sum("ms_played").alias("ms_played"),
        F.countDistinct("song_id").alias("distinct_songs"),
        F.countDistinct("artist_id").alias("distinct_artists"),
    )
    started = sessions.groupBy("user_id").agg(F.count("*").alias("sessions"))
    rows = (
        totals.join(most_frequent(plays, "user_id", "country_code"), "user_id")
        .join(
            most_frequent(plays, "user_id", "genre").withColumnRenamed("genre", "top_genre"),
            "user_id",
            "left",
        )
        .join(started, "user_id", "left")
        .select(
            F.lit(day).alias("day"),
            listener_key_column(settings, "user_id").alias("listener_key"),
            "country_code",
            "plays",
            "skips",
            "completed",
            "ms_played",
            "distinct_songs",
            "distinct_artists",
            F.coalesce("sessions", F.lit(0)).alias("sessions"),
            "top_genre",
        )
    )
    return rows, plays.count() + sessions.count()


def earlier_listeners(spark: SparkSession, settings: Settings, day: date) -> DataFrame:
    """``listener_key`` of everyone who played before ``day`` (gold's history)."""
    from pyspark.sql import functions as F

    return (
        read_table(spark, settings, USER_DAILY_LISTENING)
        .where(F.col("day") < F.lit(day))
        .select("listener_key")
        .distinct()
    )


def daily_active_users(spark: SparkSession, settings: Settings, day: date) -> tuple[DataFrame, int]:
    """The day's rows of ``gold.daily_active_users`` and the silver rows read.

    One row per country with a listening in the 28 days ending on ``day``, and one for
    ``ALL``. Each listener is first reduced to one row per country (and one overall) holding
    their last active day in the window, so a listener in two countries counts in each of
    them and once in ``ALL``.
    """
    from pyspark.sql import functions as F

    plays = listening_plays(spark, settings, day - timedelta(days=MONTH_DAYS - 1), day)
    on_day = F.col("event_date") == F.lit(day)
    per_country = (
        plays.groupBy("user_id", "country_code")
        .agg(
            F.max("event_date").alias("last_active"),
            _count(on_day).alias("plays"),
            F.sum(F.when(on_day, F.col("ms_played")).otherwise(0)).alias("ms_played"),
        )
        .select(listener_key_column(settings, "user_id").alias("listener_key"), "*")
        .drop("user_id")
    )
    overall = per_country.groupBy("listener_key").agg(
        F.lit(ALL_COUNTRIES).alias("country_code"),
        F.max("last_active").alias("last_active"),
        F.sum("plays").alias("plays"),
        F.sum("ms_played").alias("ms_played"),
    )
    seen = earlier_listeners(spark, settings, day).withColumn("seen_before", F.lit(True))
    listeners = per_country.unionByName(overall).join(seen, "listener_key", "left")
    active_on_day = F.col("last_active") == F.lit(day)
    rows = listeners.groupBy("country_code").agg(
        F.lit(day).alias("day"),
        _count(active_on_day).alias("dau"),
        _count(F.col("last_active") >= F.lit(day - timedelta(days=WEEK_DAYS - 1))).alias("wau"),
        F.count("*").alias("mau"),
        _count(active_on_day & F.col("seen_before").isNull()).alias("new_listeners"),
        F.sum("plays").alias("plays"),
        (F.sum("ms_played") / MS_PER_HOUR).alias("listening_hours"),
    )
    return rows, plays.count()


def retention_cohorts(spark: SparkSession, settings: Settings, day: date) -> tuple[DataFrame, int]:
    """The day's rows of ``gold.retention_cohorts`` and the gold history rows read.

    Every cohort (the Monday of its listeners' first play, on or before ``day``) gets a row
    for each week from its own to the one holding ``day``, weeks nobody played included.
    """
    from pyspark.sql import functions as F

    history = read_table(spark, settings, USER_DAILY_LISTENING).where(F.col("day") <= F.lit(day))
    monday = F.date_sub(F.col("day"), F.weekday(F.col("day")))
    weeks = history.select("listener_key", monday.alias("week")).distinct()
    cohorts = weeks.groupBy("listener_key").agg(F.min("week").alias("cohort_week"))
    weeks_since = (F.datediff("week", "cohort_week") / WEEK_DAYS).cast("int")
    active = (
        weeks.join(cohorts, "listener_key")
        .groupBy("cohort_week", weeks_since.alias("weeks_since"))
        .agg(F.count("*").alias("active"))
    )
    this_monday = day - timedelta(days=day.weekday())
    weeks_to_day = (F.datediff(F.lit(this_monday), "cohort_week") / WEEK_DAYS).cast("int")
    grid = (
        cohorts.groupBy("cohort_week")
        .agg(F.count("*").alias("cohort_size"))
        .withColumn("weeks_since", F.explode(F.sequence(F.lit(0), weeks_to_day)))
    )
    rows = grid.join(active, ["cohort_week", "weeks_since"], "left").select(
        F.lit(day).alias("day"),
        "cohort_week",
        "weeks_since",
        "cohort_size",
        F.coalesce("active", F.lit(0)).alias("active"),
        (F.coalesce("active", F.lit(0)) / F.col("cohort_size")).alias("retention"),
    )
    return rows, history.count()


def country_device_breakdown(
    spark: SparkSession, settings: Settings, day: date
) -> tuple[DataFrame, int]:
    """The day's rows of ``gold.country_device_breakdown`` and the silver rows read."""
    from pyspark.sql import functions as F

    plays = listening_plays(spark, settings, day, day)
    rows = plays.groupBy("country_code", "device_type").agg(
        F.lit(day).alias("day"),
        F.count("*").alias("plays"),
        F.countDistinct("user_id").alias("listeners"),
        _count(F.col("skipped")).alias("skips"),
        F.sum("ms_played").alias("ms_played"),
    )
    return rows, plays.count()


def run_user_daily_listening(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``gold.user_daily_listening`` for ``day``."""
    started = time.monotonic()
    rows, rows_in = user_daily_listening(spark, settings, day)
    return [replace_day(spark, settings, USER_DAILY_LISTENING, rows, day, rows_in, started)]


def run_daily_active_users(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``gold.daily_active_users`` for ``day``."""
    started = time.monotonic()
    rows, rows_in = daily_active_users(spark, settings, day)
    return [replace_day(spark, settings, DAILY_ACTIVE_USERS, rows, day, rows_in, started)]


def run_retention_cohorts(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Build ``gold.retention_cohorts`` as of ``day``."""
    started = time.monotonic()
    rows, rows_in = retention_cohorts(spark, settings, day)
    return [replace_day(spark, settings, RETENTION_COHORTS, rows, day, rows_in, started)]


def run_country_device_breakdown(
    spark: SparkSession, settings: Settings, day: date
) -> list[RunRecord]:
    """Build ``gold.country_device_breakdown`` for ``day``."""
    started = time.monotonic()
    rows, rows_in = country_device_breakdown(spark, settings, day)
    return [replace_day(spark, settings, COUNTRY_DEVICE_BREAKDOWN, rows, day, rows_in, started)]
