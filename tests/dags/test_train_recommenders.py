"""train_recommenders end to end (dags/train_recommenders.py): on the two-day lake with its
features online, the DAG registers a new version of the serving model trained on the newest
day's snapshot, records its promotion decision and reason, publishes its FAISS index and
writes the active listeners' lists to Redis from it; the same run again registers nothing,
keeps the champion and succeeds."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from mlflow import MlflowClient

from encore.delta import open_delta, read_lake_table
from encore.keys import read_recs
from encore.settings import Settings
from encore.tables import LISTENER_ACTIVITY, SILVER_PLAYS
from tests.dags.conftest import run_dag
from tests.dags.recs_world import D2, RUN_DATE, recs_world

pytestmark = [
    pytest.mark.integration,
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]


@pytest.fixture(scope="module")
def world_settings(airflow_settings: Settings, tmp_path_factory) -> Settings:
    settings = recs_world(airflow_settings, Path(tmp_path_factory.mktemp("recs-world"))).settings
    if open_delta(settings, LISTENER_ACTIVITY) is None:  # alone: the features come first
        features = run_dag(settings, "features_daily", RUN_DATE)
        assert features.state == "success", features.explain()
    return settings


def _versions(client: MlflowClient, name: str) -> list:
    return sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))


def _active_listeners(settings: Settings) -> set[str]:
    """Listeners with a play in the serving window ending on the newest day (D2)."""
    rows = read_lake_table(settings, SILVER_PLAYS, ["user_id", "event_date"]).to_pylist()
    days = settings.serving.recs_active_days
    return {r["user_id"] for r in rows if (D2 - r["event_date"]).days < days}


def test_a_version_is_registered_decided_indexed_and_precomputed(world_settings) -> None:
    settings = world_settings
    uri = settings.mlflow.effective_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = settings.serving.model_name

    first = run_dag(settings, "train_recommenders", RUN_DATE)

    assert first.tasks["promote"] == "success", first.explain()
    assert first.tasks["publish_index"] == "success", first.explain()
    assert first.tasks["precompute"] == "success", first.explain()
    versions = _versions(client, name)
    assert len(versions) == 1, [v.version for v in versions]
    version = versions[0]
    run = client.get_run(version.run_id)
    assert run.data.tags["dataset"] == "lake"
    assert run.data.tags["lake.cutoff_date"] == str(D2)
    assert version.tags["training_key"]
    # no champion before: the first version is promoted, and the reason says so
    assert version.tags["promotion.decision"] == "first"
    assert version.tags["promotion"] == "no champion to beat yet"
    assert client.get_model_version_by_alias(name, "champion").version == version.version
    assert {a.path for a in client.list_artifacts(version.run_id, "faiss")} >= {
        "faiss/items.faiss",
        "faiss/index.json",
    }
    assert version.tags["faiss_index"]
    # every active listener the model was trained on has the champion's list in Redis
    trained_on = set(
        read_lake_table(settings, SILVER_PLAYS, ["user_id"]).column("user_id").to_pylist()
    )
    expected = _active_listeners(settings) & trained_on
    assert expected
    with redis.Redis.from_url(settings.redis.effective_url) as r:
        lists = {user: read_recs(r, name, user) for user in expected}
    assert all(recs is not None and recs.songs for recs in lists.values()), lists
    assert {recs.model_version for recs in lists.values()} == {version.version}

    again = run_dag(settings, "train_recommenders", RUN_DATE)

    assert again.tasks["promote"] == "success", again.explain()
    assert again.tasks["precompute"] == "success", again.explain()
    assert [v.version for v in _versions(client, name)] == [version.version]
    assert client.get_model_version_by_alias(name, "champion").version == version.version
    assert "trained on identical data" in again.output
    assert "already champion" in again.output
