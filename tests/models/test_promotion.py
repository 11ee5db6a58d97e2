"""The one promotion rule (``models.registry.decide_promotion``) against the platform's real
MLflow: no champion, better, worse, not comparable, forced; the decision and its reason are
tags of the challenger. Also the split training of the scheduler (register without
promoting, then ``promote_version`` rebuilds the challenger's split) and the training key
that keeps a repeated training from registering a second identical version.
"""

from __future__ import annotations

import uuid

import pytest
from mlflow import MlflowClient

from encore.settings import Settings
from models.interactions import InteractionDataset
from models.registry import FIRST, FORCED, KEPT, NOT_COMPARABLE, PROMOTED, decide_promotion
from models.synthetic import generate
from models.training import promote_version, train

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data() -> InteractionDataset:
    return generate(users=200, items=300, genres=6, tags=30, seed=7)


@pytest.fixture()
def client(platform: Settings) -> MlflowClient:
    uri = platform.mlflow.effective_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champion(client: MlflowClient, name: str) -> str:
    return client.get_model_version_by_alias(name, "champion").version


def _decision(client: MlflowClient, name: str, version: str) -> tuple[str, str]:
    tags = client.get_model_version(name, version).tags
    return tags["promotion.decision"], tags["promotion"]


def test_the_rule_no_champion_better_worse_not_comparable_forced(
    platform: Settings, client: MlflowClient, data: InteractionDataset
) -> None:
    name = f"test-rule-{uuid.uuid4().hex[:8]}"
    first = train(platform, "pop", data, registered_name=name)
    assert first.registered.decision == FIRST and _champion(client, name) == "1"
    assert _decision(client, name, "1")[0] == FIRST

    better = train(platform, "ease", data, params={"l2": 50.0}, registered_name=name)
    assert better.metrics["ndcg@10"] > first.metrics["ndcg@10"]
    decision, reason = _decision(client, name, "2")
    assert decision == PROMOTED and "beats champion v1" in reason, reason
    assert _champion(client, name) == "2"

    worse = train(platform, "pop", data, registered_name=name, skip_identical=False)
    decision, reason = _decision(client, name, worse.registered.version)
    assert decision == KEPT and "does not beat champion v2" in reason, reason
    assert f"{first.metrics['ndcg@10']:.4f}" in reason
    assert _champion(client, name) == "2"

    # other listeners and songs: the champion cannot be scored on this split
    other = generate(users=150, items=250, genres=6, tags=30, seed=8)
    stranger = train(platform, "ease", other, params={"l2": 50.0}, registered_name=name)
    decision, reason = _decision(client, name, stranger.registered.version)
    assert decision == NOT_COMPARABLE and "not comparable" in reason, reason
    assert _champion(client, name) == "2"

    # an operator may overrule it, and it says so
    forced = decide_promotion(client, name, stranger.registered.version, force=True)
    assert forced.decision == FORCED and forced.champion == "2"
    assert _champion(client, name) == stranger.registered.version
    assert _decision(client, name, stranger.registered.version) == (FORCED, forced.reason)


def test_register_then_promote_and_identical_training_is_skipped(
    platform: Settings, client: MlflowClient
) -> None:
    """The scheduler's steps: ``--no-promote`` registers a challenger, ``promote_version``
    rebuilds its split from its lineage and re-scores the champion on it; the same training
    again registers nothing and the same decision is reached."""
    name = f"test-steps-{uuid.uuid4().hex[:8]}"
    champion = train(platform, "pop", "synthetic", registered_name=name, seed=1)
    assert champion.registered.promoted
    # seed 0: another random split, so the champion's recorded score is of other data
    challenger = train(
        platform, "ease", "synthetic", params={"l2": 50.0}, registered_name=name, promote=False
    )
    version = challenger.registered.version
    assert "promotion.decision" not in client.get_model_version(name, version).tags
    assert client.get_model_version_by_alias(name, "challenger").version == version
    assert _champion(client, name) == "1"

    decided = promote_version(platform, name)

    assert decided.version == version and decided.decision == PROMOTED, decided.reason
    assert "re-scored on the challenger's evaluation data" in decided.reason
    assert _champion(client, name) == version

    before = {v.version for v in client.search_model_versions(f"name = '{name}'")}
    again = train(
        platform,
        "ease",
        "synthetic",
        params={"l2": 50.0},
        registered_name=name,
        promote=False,
        skip_identical=True,
    )
    assert again is None
    after = {v.version for v in client.search_model_versions(f"name = '{name}'")}
    assert after == before
    assert client.get_model_version_by_alias(name, "challenger").version == version
    repeated = promote_version(platform, name)
    assert repeated.promoted and _champion(client, name) == version


def test_publish_index_builds_a_missing_index_once(
    platform: Settings, client: MlflowClient, data: InteractionDataset
) -> None:
    from models.index import IndexConfig
    from models.registry import publish_serving_index

    name = f"test-index-{uuid.uuid4().hex[:8]}"
    trained = train(
        platform,
        "als",
        data,
        params={"factors": 8, "iterations": 3},
        registered_name=name,
        index=False,
    )
    run_id = client.get_model_version(name, trained.registered.version).run_id
    assert not client.list_artifacts(run_id, "faiss")
    uri = platform.mlflow.effective_tracking_uri

    published = publish_serving_index(uri, name, IndexConfig())

    assert published.built and published.items == data.user_items.shape[1]
    assert {a.path for a in client.list_artifacts(run_id, "faiss")} >= {
        "faiss/items.faiss",
        "faiss/index.json",
    }
    assert client.get_model_version(name, published.version).tags["faiss_index"] == published.kind
    again = publish_serving_index(uri, name, IndexConfig())
    assert not again.built and again.kind == published.kind and again.items == published.items
