"""Train one recommender end to end: data, split, fit, evaluate, index, log, register.

This is what ``encore train <model>`` and the demo call; a scheduler would call the same.
"""

from __future__ import annotations

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

    def summary(self) -> dict[str, Any]:
        """What ``encore train`` prints: parameters, test metrics, index, registration."""
        return {
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
) -> TrainingResult:
    """Fit ``model_name`` on a split of ``dataset``, evaluate, build its index, register.

    Args:
        params: model parameters; with ``trials > 0`` they are tuned on a validation split
            carved from the training part first (``params`` then fix some of them).
        registered_name: MLflow registered model name (default ``encore-<model>``).

    Raises:
        ServiceError: ``register`` and the tracking server is unreachable; asked before
            any work, so a server that is down costs seconds, not a training run.
    """
    if register:
        require_tracking_server(settings.mlflow.effective_tracking_uri)
    data = load_dataset(dataset, settings) if isinstance(dataset, str) else dataset
    report(f"dataset {data.describe()}")
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
    index, index_metrics = None, {}
    if model.item_factors is not None:
        config = IndexConfig.from_settings(settings)
        index = ItemIndex.build(model.item_factors, config)
        rng = np.random.default_rng(seed)
        queries = model.item_factors[rng.choice(len(model.item_factors), 200)]
        index_metrics = measure(index, model.item_factors, queries, 10)
        report(f"faiss {index.kind}: recall@10 {index_metrics['recall@10']:.3f}")
    result = TrainingResult(model, {**model.params}, metrics, eval_fp, index_metrics)
    if register:
        from models.registry import log_and_register

        def evaluate_champion(champion: Recommender) -> float:
            if champion.n_items != model.n_items:
                return float("inf")  # other catalogue: never replace it blindly
            return evaluate(champion, train_part, test, k=10)[settings.models.registry_metric]

        result.registered = log_and_register(
            settings.mlflow.effective_tracking_uri,
            registered_name or f"encore-{model_name}",
            model,
            train_part,
            data.user_ids,
            data.item_ids,
            params={"model": model_name, "dataset": data.name, "seed": seed, **model.params},
            metrics=metrics,
            lineage={"name": data.name, **data.lineage, **data.describe()},
            evaluation_fingerprint=eval_fp,
            metric=settings.models.registry_metric,
            index=index,
            index_metrics=index_metrics,
            evaluate_champion=evaluate_champion,
        )
        reg = result.registered
        report(
            f"registered {reg.name} v{reg.version} (challenger); "
            f"{'champion' if reg.promoted else 'not promoted'}: {reg.reason}"
        )
    return result
