"""Train one recommender end to end: data, split, fit, evaluate, index, log, register.

This is what ``encore train <model>`` and the demo call; the ``train_recommenders`` DAG
calls the same with ``promote=False`` and then :func:`promote_version` (``encore models
promote``) as a step of its own.

**Idempotent per data**: a registered version carries a ``training_key``, the sha256 of
what decides the model (model, dataset and its content, cut-off, parameters, tuning
trials, seed, code commit). Training again with the same key and ``skip_identical``
registers nothing: the existing version is reported (and aliased challenger again), so a
DAG run repeated for its interval does not add a version trained on identical data. The
key hashes the snapshot's *content*, not its Delta version: rebuilding a cut-off's
snapshot with the same rows writes a new Delta version but changes no model.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from models import create_recommender
from models.datasets import fingerprint, load_dataset
from models.evaluation import evaluate
from models.index import IndexConfig, ItemIndex, measure
from models.interactions import InteractionDataset
from models.protocol import split_for
from models.splits import holdout_split, time_split
from models.tracking import require as require_tracking_server
from models.tuning import tune_model, validation_split

if TYPE_CHECKING:
    from encore.settings import Settings
    from models.base import Recommender
    from models.registry import RegisteredVersion

Report = Callable[[str], None]


@dataclass
class TrainingResult:
    model: Recommender
    params: dict[str, Any]
    metrics: dict[str, float]
    evaluation_fingerprint: str
    index_metrics: dict[str, Any] = field(default_factory=dict)
    registered: RegisteredVersion | None = None
    training_key: str = ""

    def summary(self) -> dict[str, Any]:
        """What ``encore train`` prints: parameters, test metrics, index, registration."""
        return {
            "training_key": self.training_key,
            "model": self.model.name,
            "params": self.params,
            "metrics": {k: round(v, 4) for k, v in self.metrics.items() if "@" in k},
            "faiss": self.index_metrics,
            "registered": self.registered.__dict__ if self.registered else None,
        }


def split_for_training(dataset: InteractionDataset, seed: int = 0, test_fraction: float = 0.1):
    """The evaluation split: by time for datasets with events from the lake, else random."""
    if split_for(dataset) == "time":
        train, test, _ = time_split(dataset.events, dataset.shape, test_fraction)
        return train, test
    return holdout_split(dataset.user_items, test_fraction, seed=seed)


def dataset_fingerprint(data: InteractionDataset) -> str:
    """sha256 of a dataset's content: its matrix and the ids of its rows and columns."""
    digest = hashlib.sha256(fingerprint(data.user_items).encode())
    for ids in (data.user_ids, data.item_ids):
        digest.update("\x1f".join(str(i) for i in ids.tolist()).encode())
    return digest.hexdigest()


def training_key(
    model_name: str,
    data: InteractionDataset,
    params: dict[str, Any],
    trials: int,
    seed: int,
    commit: str,
) -> str:
    """What decides a trained model, hashed: equal keys, identical training."""
    described = {
        "model": model_name,
        "dataset": data.name,
        "cutoff": data.lineage.get("cutoff_date"),
        "content": dataset_fingerprint(data),
        "params": params,
        "trials": trials,
        "seed": seed,
        "commit": commit,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def train(
    settings: Settings,
    model_name: str,
    dataset: InteractionDataset | str = "synthetic",
    params: dict[str, Any] | None = None,
    trials: int = 0,
    seed: int = 0,
    register: bool = True,
    registered_name: str | None = None,
    report: Report = lambda _: None,
    cutoff: str | None = None,
    promote: bool = True,
    index: bool = True,
    skip_identical: bool = False,
) -> TrainingResult | None:
    """Fit ``model_name`` on a split of ``dataset``, evaluate, build its index, register.

    Args:
        params: model parameters; with ``trials > 0`` they are tuned on a validation split
            carved from the training part first (``params`` then fix some of them).
        registered_name: MLflow registered model name (default ``encore-<model>``).
        cutoff: the lake snapshot (``training.interactions`` ``cutoff_date``) for the
            ``lake`` dataset; default its latest.
        promote: decide the promotion after registering (False: challenger only).
        index: build the FAISS index and register it with the version.
        skip_identical: with ``register``, train nothing when a version with the same
            training key exists (``report`` says which; it is aliased challenger again).

    Returns:
        The result; None when ``skip_identical`` found the version already trained.

    Raises:
        ServiceError: ``register`` and the tracking server is unreachable; asked before
            any work, so a server that is down costs seconds, not a training run.
    """
    if register:
        require_tracking_server(settings.mlflow.effective_tracking_uri)
    if isinstance(dataset, str):
        extra = {"cutoff": cutoff} if dataset == "lake" and cutoff else {}
        data = load_dataset(dataset, settings, **extra)
    else:
        data = dataset
    report(f"dataset {data.describe()}")
    name = registered_name or f"encore-{model_name}"
    key = ""
    if register:
        from models.registry import git_commit

        key = training_key(model_name, data, dict(params or {}), trials, seed, git_commit())
        existing = _existing_version(settings, name, key) if skip_identical else None
        if existing is not None:
            report(
                f"{name} v{existing.version} was trained on identical data (training key "
                f"{key[:12]}): nothing to train; it is the challenger"
            )
            return None
    train_part, test = split_for_training(data, seed)
    params = dict(params or {})
    if trials > 0:
        fit_part, validation = validation_split(train_part, seed=seed)
        report(f"tuning {model_name} ({trials} trials on validation)")
        params, value = tune_model(
            model_name,
            fit_part,
            validation,
            data.item_features,
            trials=trials,
            seed=seed,
            fixed=params,
        )
        report(f"validation ndcg@10 {value:.4f} with {params}")
    report(f"fitting {model_name}")
    started = time.perf_counter()
    model = create_recommender(model_name, **params).fit(
        train_part, item_features=data.item_features
    )
    fit_seconds = time.perf_counter() - started
    metrics = evaluate(model, train_part, test, k=10)
    metrics["fit_seconds"] = fit_seconds
    report(f"test ndcg@10 {metrics['ndcg@10']:.4f} (fit {fit_seconds:.1f} s)")
    eval_fp = fingerprint(test)
    item_index, index_metrics = None, {}
    if index and model.item_factors is not None:
        config = IndexConfig.from_settings(settings)
        item_index = ItemIndex.build(model.item_factors, config)
        rng = np.random.default_rng(seed)
        queries = model.item_factors[rng.choice(len(model.item_factors), 200)]
        index_metrics = measure(item_index, model.item_factors, queries, 10)
        report(f"faiss {item_index.kind}: recall@10 {index_metrics['recall@10']:.3f}")
    result = TrainingResult(
        model, {**model.params}, metrics, eval_fp, index_metrics, training_key=key
    )
    if register:
        from models.registry import log_and_register

        def evaluate_champion(champion: Recommender) -> float:
            # called only for a champion of the same listeners and songs (the registry
            # checks their ids), so its rows and columns are this split's
            return evaluate(champion, train_part, test, k=10)[settings.models.registry_metric]

        result.registered = log_and_register(
            settings.mlflow.effective_tracking_uri,
            name,
            model,
            train_part,
            data.user_ids,
            data.item_ids,
            params={"model": model_name, "dataset": data.name, "seed": seed, **model.params},
            metrics=metrics,
            lineage={"name": data.name, **data.lineage, **data.describe()},
            evaluation_fingerprint=eval_fp,
            metric=settings.models.registry_metric,
            index=item_index,
            index_metrics=index_metrics,
            evaluate_champion=evaluate_champion,
            promote=promote,
            version_tags={"training_key": key, "seed": str(seed), "model": model_name},
        )
        reg = result.registered
        outcome = reg.decision or "promotion not decided"
        report(f"registered {reg.name} v{reg.version} (challenger); {outcome}: {reg.reason}")
    return result


def _existing_version(settings: Settings, name: str, key: str):
    """The version of ``name`` trained with ``key``, aliased challenger again; or None."""
    from models.registry import CHALLENGER, find_version, registry_client
    from models.tracking import server_errors

    uri = settings.mlflow.effective_tracking_uri
    with server_errors(uri):
        client = registry_client(uri)
        found = find_version(client, name, "training_key", key)
        if found is not None:
            client.set_registered_model_alias(name, CHALLENGER, str(found.version))
        return found


def promote_version(
    settings: Settings,
    name: str,
    version: str | None = None,
    force: bool = False,
    report: Report = lambda _: None,
):
    """Decide whether ``version`` (default: the ``challenger``) of the recommender ``name``
    becomes champion (:func:`models.registry.decide_promotion`).

    A champion scored on other evaluation data is re-scored on the challenger's test
    split, rebuilt from the challenger's lineage (its dataset, lake cut-off and split
    seed); when the rebuilt split is not the one the challenger was scored on (the
    snapshot changed since) or the champion has other listeners or songs, the pair is not
    comparable and the champion stays (unless ``force``).

    Raises:
        NotFoundError: no such version, or no challenger.
        ServiceError: the tracking server is unreachable.
    """
    from encore.errors import NotFoundError
    from models.registry import (
        CHALLENGER,
        current_version,
        decide_promotion,
        recommender_rescore,
        registry_client,
    )
    from models.tracking import server_errors

    uri = settings.mlflow.effective_tracking_uri
    require_tracking_server(uri)
    with server_errors(uri):
        client = registry_client(uri)
        if version is None:
            challenger = current_version(client, name, CHALLENGER)
            if challenger is None:
                raise NotFoundError(f"registered model {name} has no alias {CHALLENGER!r}")
            version = str(challenger.version)

        def rescore(champion: Any) -> float | None:
            split = _challenger_split(settings, client, name, version, report)
            if split is None:
                return None
            data, train_part, test = split
            metric = settings.models.registry_metric
            scored = recommender_rescore(
                client,
                name,
                data.user_ids,
                data.item_ids,
                lambda model: evaluate(model, train_part, test, k=10)[metric],
            )(champion)
            if scored is None:
                report(f"champion v{champion.version} has other listeners or songs")
            return scored

        return decide_promotion(client, name, version, rescore, force=force)


def _challenger_split(settings: Settings, client: Any, name: str, version: str, report: Report):
    """The challenger's dataset and split rebuilt from its run; None when the rebuilt test
    split is not the one it was scored on."""
    from encore.errors import DatasetError

    details = client.get_model_version(name, version)
    run = client.get_run(details.run_id)
    dataset = run.data.tags.get("dataset", "")
    cutoff = run.data.tags.get("lake.cutoff_date")
    seed = int(run.data.params.get("seed", "0"))
    try:
        extra = {"cutoff": cutoff} if dataset == "lake" and cutoff else {}
        data = load_dataset(dataset, settings, **extra)
    except DatasetError as error:
        report(f"the challenger's data cannot be read again: {error}")
        return None
    train_part, test = split_for_training(data, seed)
    if fingerprint(test) != details.tags.get("evaluation_fingerprint"):
        report("the challenger's test split changed since it was scored")
        return None
    return data, train_part, test
