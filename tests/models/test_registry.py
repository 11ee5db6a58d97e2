"""MLflow round trip against the real local tracking server (PostgreSQL + disk artifacts).

Registration, lineage tags, champion/challenger promotion on the same evaluation data, the
FAISS index as an artifact of the version, and ``models:/<name>@champion`` loading in a
fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from encore.settings import Settings
from models.interactions import InteractionDataset
from models.registry import git_commit
from models.synthetic import generate
from models.training import train

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data() -> InteractionDataset:
    return generate(users=300, items=400, genres=8, tags=60, seed=5)


@pytest.fixture()
def client(platform: Settings) -> MlflowClient:
    uri = platform.mlflow.effective_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _alias(client: MlflowClient, name: str, alias: str) -> str:
    return client.get_model_version_by_alias(name, alias).version


def test_champion_challenger_promotion(platform: Settings, client, data) -> None:
    name = f"test-promotion-{uuid.uuid4().hex[:8]}"
    first = train(platform, "pop", data, registered_name=name)
    assert first.registered.promoted and first.registered.version == "1"
    assert _alias(client, name, "champion") == "1"

    better = train(platform, "ease", data, params={"l2": 50.0}, registered_name=name)
    assert better.metrics["ndcg@10"] > first.metrics["ndcg@10"]
    assert better.registered.promoted, better.registered.reason
    assert "same evaluation data" in better.registered.reason
    assert _alias(client, name, "champion") == "2"

    worse = train(platform, "pop", data, registered_name=name)
    assert not worse.registered.promoted
    assert _alias(client, name, "champion") == "2"
    assert _alias(client, name, "challenger") == "3"
    assert "does not beat" in client.get_model_version(name, "3").tags["promotion"]

    # other evaluation data: the champion is re-scored on the challenger's test split
    other = train(platform, "pop", data, seed=1, registered_name=name)
    assert other.evaluation_fingerprint != worse.evaluation_fingerprint
    assert not other.registered.promoted
    assert "re-scored" in other.registered.reason
    assert _alias(client, name, "champion") == "2"


def test_run_lineage_index_and_fresh_process_load(
    platform: Settings, client, data, platform_settings_env
) -> None:
    name = f"test-als-{uuid.uuid4().hex[:8]}"
    result = train(
        platform,
        "als",
        data,
        params={"factors": 16, "iterations": 8, "weighting": "log"},
        registered_name=name,
    )
    version = client.get_model_version(name, result.registered.version)
    run = client.get_run(version.run_id)
    assert run.data.tags["git_commit"].split("+")[0] == git_commit().split("+")[0]
    assert len(run.data.tags["git_commit"].split("+")[0]) == 40
    assert run.data.tags["dataset"] == "synthetic"
    assert run.data.tags["evaluation_fingerprint"] == result.evaluation_fingerprint
    assert version.tags["evaluation_fingerprint"] == result.evaluation_fingerprint
    assert run.data.params["factors"] == "16"
    assert run.data.metrics["ndcg_at_10"] == pytest.approx(result.metrics["ndcg@10"])
    assert run.data.metrics["faiss_recall_at_10"] == pytest.approx(1.0)
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "faiss")}
    assert {"faiss/items.faiss", "faiss/index.json"} <= artifacts
    lineage = {a.path for a in client.list_artifacts(version.run_id)}
    assert "lineage.json" in lineage

    # a fresh interpreter loads the champion and recommends what this process would
    users = [0, 1, 2]
    script = (
        "import json, mlflow.pyfunc, pandas as pd\n"
        f"m = mlflow.pyfunc.load_model('models:/{name}@champion')\n"
        f"out = m.predict(pd.DataFrame({{'user_id': {users}}}), params={{'n': 5}})\n"
        "print(json.dumps(out.to_dict(orient='list')))\n"
    )
    env = {
        **platform_settings_env,
        "MLFLOW_TRACKING_URI": platform.mlflow.effective_tracking_uri,
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd="/tmp",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["user_id"] == [u for u in users for _ in range(5)]
    assert out["rank"] == [1, 2, 3, 4, 5] * 3
    train_part = __import__("models.training", fromlist=["x"]).split_for_training(data, 0)[0]
    expected, _ = result.model.recommend(np.array(users), train_part[users], N=5)
    assert out["item_id"] == [int(data.item_ids[i]) for i in expected.ravel()]


def test_train_command_registers_the_version_it_prints(
    platform: Settings, client, platform_settings_env, tmp_path
) -> None:
    """``encore train`` as a person runs it, against the running platform: exit 0, stdout
    is the JSON summary alone, and the version it names is the one MLflow holds."""
    name = f"test-cli-{uuid.uuid4().hex[:8]}"
    encore = Path(sys.executable).with_name("encore")
    args = ["train", "ease", "--dataset", "synthetic", "--params", '{"l2": 50}', "--name", name]
    done = subprocess.run(
        [str(encore), *args],
        env={**platform_settings_env, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads(done.stdout)
    registered = printed["registered"]
    assert registered["name"] == name and registered["version"] == "1"
    assert registered["promoted"], registered["reason"]
    version = client.get_model_version(name, registered["version"])
    assert version.run_id == registered["run_id"]
    assert _alias(client, name, "champion") == "1"
    run = client.get_run(version.run_id)
    assert run.data.params["model"] == "ease" and run.data.params["l2"] == "50"
    assert run.data.tags["dataset"] == "synthetic"
    assert round(run.data.metrics["ndcg_at_10"], 4) == printed["metrics"]["ndcg@10"]
