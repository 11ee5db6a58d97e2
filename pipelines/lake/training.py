"""The recommenders' input: ``training.interactions``, listener x song weighted counts.

Input: ``silver.plays`` (every day up to and including ``day``). Output: the
``cutoff_date = day`` partition of ``training.interactions`` (``encore.tables
.TRAINING_INTERACTIONS``), one row per (user_id, song_id) a listener ever played before the
cut-off (strictly before the next day's 00:00 UTC: ``event_date`` is the UTC date of
``start_time``, so ``event_date <= day`` is exactly that). Schedule: in ``encore lake
build`` after the gold jobs, daily; a model then names the cut-off it was trained on.

Per pair: ``plays`` (listening events: play, skip, complete; a ``like`` is a separate
event of no length, not a play), ``completed`` and ``skips`` (silver's flags, over those
plays), ``likes``, first and last play, and ``weight``, the implicit-feedback confidence
the models read (the values of the users x items matrix):

    weight = 1.0 x completed + 0.5 x partial + 0.1 x skipped + 2.0 if liked at least once

over disjoint plays: ``completed``; ``skipped``, skipped and not completed (a skip event
after the completion threshold counts as completed); ``partial``, neither (stopped early
without a skip). Why these:

- a completed play is the unit of evidence: the listener chose the song and stayed;
- a skip is weak evidence, not a negative one (the listener started the song, from a
  playlist or a suggestion, and it was not what they wanted *now*); 0.1 keeps a pair seen
  only through skips in the matrix, ranked well below anything listened to;
- a like is the one explicit signal, worth two full listens; counted once per pair,
  since liking, unliking and liking again says no more than liking once.

No time decay: the weight of a pair then depends on the listening only, not on the
cut-off, so two snapshots agree on every old pair, and the evaluation's time split
already rewards recency. A decay can be added here as a factor of ``last_played_at``.

Songs not in the catalog (``song_known`` false) are left out: a model cannot serve a song
the catalog does not have. They are counted in the log. Listeners not (yet) in
``dims.users`` are kept: their plays are real and an account arrives later.

Cost: every run reads the whole of silver history up to the cut-off (one pass, one
aggregation). Fine at this scale; beyond it, the previous cut-off's partition plus one
day of silver would give the same sums (first/last by min/max).
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import TYPE_CHECKING

from encore.settings import Settings
from encore.tables import SILVER_PLAYS, TRAINING_INTERACTIONS
from pipelines.lake.audit import RunRecord
from pipelines.lake.writing import read_table, replace_day

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

COMPLETED_WEIGHT = 1.0
PARTIAL_WEIGHT = 0.5
SKIP_WEIGHT = 0.1
LIKE_BONUS = 2.0


def run(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Write the ``cutoff_date = day`` snapshot of ``training.interactions``."""
    from pyspark.sql import functions as F

    started = time.monotonic()
    plays = read_table(spark, settings, SILVER_PLAYS).where(
        F.col("event_date") <= F.lit(day.isoformat()).cast("date")
    )
    counts = plays.agg(
        F.count(F.lit(1)).alias("rows_in"),
        F.count(F.when(~F.col("song_known"), 1)).alias("unknown"),
    ).first()
    if counts["unknown"]:
        log.info(
            "training.interactions %s: %d plays of songs not in the catalog left out",
            day,
            counts["unknown"],
        )
    frame = interactions(plays.where(F.col("song_known")), day)
    return [
        replace_day(spark, settings, TRAINING_INTERACTIONS, frame, day, counts["rows_in"], started)
    ]


def interactions(plays: DataFrame, cutoff: date) -> DataFrame:
    """One row per (user_id, song_id) of ``plays``, with counts and ``weight``."""
    from pyspark.sql import functions as F

    listening = F.col("event_type") != "like"
    completed = listening & F.col("completed")
    skipped_only = listening & ~F.col("completed") & F.col("skipped")
    partial = listening & ~F.col("completed") & ~F.col("skipped")
    pairs = plays.groupBy("user_id", "song_id").agg(
        F.count(F.when(listening, 1)).alias("plays"),
        F.count(F.when(completed, 1)).alias("completed"),
        F.count(F.when(listening & F.col("skipped"), 1)).alias("skips"),
        F.count(F.when(~listening, 1)).alias("likes"),
        F.min("start_time").alias("first_played_at"),
        F.max("start_time").alias("last_played_at"),
        F.sum(
            F.when(completed, COMPLETED_WEIGHT)
            .when(skipped_only, SKIP_WEIGHT)
            .when(partial, PARTIAL_WEIGHT)
            .otherwise(0.0)
        ).alias("listening_weight"),
    )
    weight = F.col("listening_weight") + F.when(F.col("likes") > 0, LIKE_BONUS).otherwise(0.0)
    return (
        pairs.withColumn("weight", weight)
        .withColumn("cutoff_date", F.lit(cutoff.isoformat()).cast("date"))
        .drop("listening_weight")
    )
