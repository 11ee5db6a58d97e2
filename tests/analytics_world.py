"""The world analysts and data scientists look at in the tests: a week of a small platform,
built by the real jobs, shared by the dashboard's and the notebooks' tests.

- a catalog and accounts in a PostgreSQL database of its own, and 7 days of simulated
  bronze play events (:mod:`tests.dags.lake_world`: 10 artists x 3 songs, ``USERS``
  listeners), Friday to Thursday so the retention heatmap has two cohort weeks (a day of the
  build costs about 14 Spark jobs of a few seconds each: the week is the budget); about 40%
  of plays carry the A/B variant the listener is assigned to (``champion``/``challenger``
  half and half);
- every stage of ``encore lake build`` over the 7 days (dims, silver, gold, training,
  features) in one run, as a person would run it;
- trending now in Redis (a database of its own): the last day's plays replayed at the
  current time through the ingestion job's own Redis writer (:class:`RedisAggregates`; the
  Flink job around it is not started here);
- two registered recommenders trained on the lake (``encore train als|pop --dataset
  lake``), with their offline metrics in the platform's MLflow, ALS as the serving model.

Built once per test process (a few minutes), by the first test that asks for it.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from encore.settings import Settings
from pipelines.ingest.aggregates import RedisAggregates
from serving.experiments import assign_variant
from tests.dags.lake_world import build_lake_world
from tests.dags.recs_world import encore

FIRST_DAY = date(2026, 11, 20)
"""A Friday: the 7 days span two ISO weeks (cohorts of the weeks of 16 and 23 November)."""
DAYS = [FIRST_DAY + timedelta(n) for n in range(7)]
LAST_DAY = DAYS[-1]
USERS = 40
REDIS_DB = 9
"""The world's Redis database: its trending keys never meet the ingestion tests'."""
AB_SPLIT = {"champion": 0.5, "challenger": 0.5}
RECOMMENDED_SHARE = 0.4
"""Of each listener's plays, the share that came from a recommendation (carry a variant)."""


@dataclass(frozen=True)
class AnalyticsWorld:
    settings: Settings
    """The platform's settings on the world's database, lake, Redis database, feature
    project and model names."""
    days: list[date]
    """The days the lake holds, oldest first (``DAYS``)."""
    events: int
    """Rows written to ``bronze.play_events``."""
    models: dict[str, str]
    """Registered model name per trained family (``als``, ``pop``)."""
    trending_countries: list[str]
    """Countries with a trending-now ranking in Redis."""


_built: dict[str, AnalyticsWorld] = {}


def analytics_world(platform: Settings, root: Path) -> AnalyticsWorld:
    """The world (built on first call, under ``root``)."""
    if "world" in _built:
        return _built["world"]
    tag = uuid.uuid4().hex[:8]
    redis_url = f"redis://localhost:{platform.redis.port}/{REDIS_DB}"
    base = platform.model_copy(
        update={
            "redis": platform.redis.model_copy(update={"url": redis_url}),
            "serving": platform.serving.model_copy(
                update={"model_name": f"world-als-{tag}", "ab_split": AB_SPLIT}
            ),
            "features": platform.features.model_copy(
                update={"repo": str(root / "features"), "project": f"world{tag}"}
            ),
        }
    )

    def variant_of(row: dict) -> str | None:
        # a stable share of each listener's plays came from a recommendation
        digest = hashlib.sha256(row["event_id"].encode()).digest()
        recommended = digest[0] < 256 * RECOMMENDED_SHARE
        return assign_variant(base, row["user_id"]) if recommended else None

    world = build_lake_world(
        base,
        root / "lake",
        DAYS,
        database="analytics_world",
        users=USERS,
        variant_of=variant_of,
    )
    settings = world.settings
    # ~100 Spark jobs: a few minutes on two idle cores, far more beside other Spark work
    encore(settings, "lake", "build", "--from", str(DAYS[0]), "--to", str(LAST_DAY), timeout=2400)
    countries = replay_trending_now(settings)
    models = {"als": settings.serving.model_name, "pop": f"world-pop-{tag}"}
    encore(settings, "train", "als", "--dataset", "lake", "--serving", "--no-index")
    encore(settings, "train", "pop", "--dataset", "lake", "--name", models["pop"])
    _built["world"] = AnalyticsWorld(settings, DAYS, world.events, models, countries)
    return _built["world"]


def replay_trending_now(settings: Settings) -> list[str]:
    """The last day's plays applied to Redis as if they had just happened (the last hour),
    through the ingestion job's writer; returns the countries that got a ranking."""
    import redis

    from encore.delta import read_lake_table
    from encore.tables import PLAY_EVENTS

    client = redis.Redis.from_url(settings.redis.effective_url)
    client.flushdb()
    bronze = (
        read_lake_table(settings, PLAY_EVENTS, filters=[("event_date", "=", LAST_DAY)])
        .sort_by("kafka_offset")
        .to_pylist()
    )
    now_us = int(time.time() * 1_000_000)
    span_us = 3_000_000_000  # spread over the last 50 minutes
    step = span_us // max(len(bronze), 1)
    columns: dict[str, list] = {
        name: []
        for name in (
            "kafka_partition",
            "kafka_offset",
            "start_time",
            "event_time_us",
            "country_code",
            "song_id",
            "user_id",
            "event_id",
            "event_type",
            "ms_played",
        )
    }
    for i, row in enumerate(bronze):
        at = now_us - span_us + i * step
        columns["kafka_partition"].append(0)
        columns["kafka_offset"].append(i)
        columns["start_time"].append(at)
        columns["event_time_us"].append(at)
        for name in ("country_code", "song_id", "user_id", "event_id", "event_type"):
            columns[name].append(row[name])
        columns["ms_played"].append(row["ms_played"])
    RedisAggregates(client, settings, "analytics-world").apply(columns)
    return sorted(set(columns["country_code"]))
