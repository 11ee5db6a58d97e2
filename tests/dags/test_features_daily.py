"""features_daily end to end (dags/features_daily.py): on a lake built through gold for two
days, the DAG builds the newest day's feature tables and loads them into Redis, where Feast
serves a listener's values equal to what silver holds. (A second run rewrites the same day's
snapshots and values: each task replaces its day; not run here, it costs two Spark starts.)"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from encore.delta import read_lake_table
from encore.settings import Settings
from encore.tables import LISTENER_ACTIVITY, SILVER_PLAYS
from tests.dags.conftest import run_dag
from tests.dags.recs_world import D2, RUN_DATE, recs_world

# the shared world's first build (Spark, two days) is paid by whichever test comes first
pytestmark = [
    pytest.mark.integration,
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]


@pytest.fixture(scope="module")
def world_settings(airflow_settings: Settings, tmp_path_factory) -> Settings:
    return recs_world(airflow_settings, Path(tmp_path_factory.mktemp("recs-world"))).settings


def _plays_7d(settings: Settings) -> Counter:
    """Per listener, the listening plays (likes are not plays) of the 7 days ending on D2."""
    rows = read_lake_table(settings, SILVER_PLAYS, ["user_id", "event_type", "event_date"])
    first = D2 - timedelta(days=6)
    return Counter(
        r["user_id"]
        for r in rows.to_pylist()
        if r["event_type"] != "like" and first <= r["event_date"] <= D2
    )


def _online(settings: Settings, users: list[str]) -> list[int | None]:
    from features.store import feature_store

    served = feature_store(settings).get_online_features(
        features=["listener_activity:plays_7d"],
        entity_rows=[{"user_id": u} for u in users],
    )
    return served.to_dict()["plays_7d"]


def _snapshot_rows(settings: Settings) -> list[dict]:
    rows = read_lake_table(settings, LISTENER_ACTIVITY, ["user_id", "feature_date", "plays_7d"])
    return sorted((r for r in rows.to_pylist()), key=lambda r: (r["feature_date"], r["user_id"]))


def test_the_newest_day_is_built_and_served_online(world_settings: Settings) -> None:
    settings = world_settings
    expected = _plays_7d(settings)
    listeners = sorted(expected)[:5]
    assert listeners, "the world has listeners"

    first = run_dag(settings, "features_daily", RUN_DATE)

    assert first.state == "success", first.explain()
    assert set(first.tasks.values()) == {"success"}, first.explain()
    snapshot = _snapshot_rows(settings)
    newest = {r["user_id"]: r["plays_7d"] for r in snapshot if r["feature_date"] == D2}
    assert {u: newest.get(u) for u in listeners} == {u: expected[u] for u in listeners}
    assert _online(settings, listeners) == [expected[u] for u in listeners]
    assert _online(settings, ["nobody-listens"]) == [None]
