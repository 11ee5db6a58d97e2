"""Recommenders side by side in MLflow: fit a few models on one evaluation split, log each as
a run of an experiment, and read runs back as one table.

What a data scientist comparing models does (the ``02_compare_recommenders`` notebook): the
split and the metrics are the training's own (:func:`models.training.split_for_training`,
:func:`models.evaluation.evaluate`), so a run here is comparable with a registered
version's run when their ``evaluation_fingerprint`` tags are equal. Nothing is registered:
a comparison is an experiment, not a candidate for serving (``encore train`` registers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models import create_recommender
from models.datasets import fingerprint
from models.evaluation import evaluate
from models.interactions import InteractionDataset
from models.training import split_for_training

if TYPE_CHECKING:
    import pandas as pd

    from encore.settings import Settings

EXPERIMENT = "encore-comparisons"
"""Where :func:`compare_recommenders` logs by default (``encore train`` logs its runs to
``encore-recommenders``)."""

Report = Callable[[str], None]


@dataclass(frozen=True)
class ComparedRun:
    """One model of a comparison: its MLflow run and what was logged there."""

    model: str
    run_id: str
    params: dict[str, Any]
    metrics: dict[str, float]


def compare_recommenders(
    settings: Settings,
    data: InteractionDataset,
    candidates: dict[str, dict[str, Any]],
    experiment: str = EXPERIMENT,
    k: int = 10,
    seed: int = 0,
    report: Report = lambda _: None,
) -> list[ComparedRun]:
    """Fit every model of ``candidates`` (name -> parameters, for
    :func:`models.create_recommender`) on the training part of ``data``'s evaluation split,
    score it on the test part, and log one run per model to ``experiment``.

    Each run holds the model's parameters, its metrics at ``k`` (``@`` written ``_at_``, as
    every Encore run), ``fit_seconds``, and the tags ``model_family``, ``dataset``,
    ``evaluation_fingerprint`` (the test split's sha256) and the lake lineage.

    Raises:
        ServiceError: the tracking server is unreachable (asked before any fit).
        ModelError: an unknown model or parameter.
    """
    import mlflow

    from models.registry import _metric_key, git_commit, lineage_tags, registry_client
    from models.tracking import require, server_errors

    uri = settings.mlflow.effective_tracking_uri
    require(uri)
    train, test = split_for_training(data, seed)
    evaluation = fingerprint(test)
    commit = git_commit()
    runs = []
    with server_errors(uri):
        registry_client(uri)
        mlflow.set_experiment(experiment)
        for name, params in candidates.items():
            model = create_recommender(name, **params)
            started = time.perf_counter()
            model.fit(train, item_features=data.item_features)
            fit_seconds = time.perf_counter() - started
            metrics = {**evaluate(model, train, test, k), "fit_seconds": fit_seconds}
            logged = {"model": name, "dataset": data.name, "seed": seed, **model.params}
            with mlflow.start_run(run_name=name) as run:
                mlflow.log_params({key: str(value) for key, value in logged.items()})
                mlflow.log_metrics({_metric_key(key): float(v) for key, v in metrics.items()})
                mlflow.set_tags(
                    {
                        "model_family": name,
                        "dataset": data.name,
                        "evaluation_fingerprint": evaluation,
                        "git_commit": commit,
                        **lineage_tags(data.lineage),
                    }
                )
            report(f"{name}: ndcg@{k} {metrics[f'ndcg@{k}']:.4f} (run {run.info.run_id})")
            runs.append(ComparedRun(name, run.info.run_id, logged, metrics))
    return runs


def runs_table(
    settings: Settings,
    experiments: Sequence[str] = (EXPERIMENT,),
    filter_string: str = "",
    max_results: int = 1000,
) -> pd.DataFrame:
    """The finished runs of ``experiments`` (newest first) as one row each: ``run_id``,
    ``run_name``, ``experiment``, ``model`` (the ``model_family`` tag), ``dataset``,
    ``evaluation_fingerprint``, ``start_time``, then every metric under its Encore name
    (``ndcg@10``, ``fit_seconds``). Experiments that do not exist yet are left out; none
    at all gives an empty table with those columns.

    Raises:
        ServiceError: the tracking server is unreachable.
    """
    import mlflow
    import pandas as pd

    from models.registry import registry_client
    from models.tracking import require, server_errors

    uri = settings.mlflow.effective_tracking_uri
    require(uri)
    fixed = [
        "run_id",
        "run_name",
        "experiment",
        "model",
        "dataset",
        "evaluation_fingerprint",
        "start_time",
    ]
    with server_errors(uri):
        client = registry_client(uri)
        found = {
            e.experiment_id: e.name
            for name in experiments
            if (e := client.get_experiment_by_name(name)) is not None
        }
        if not found:
            return pd.DataFrame(columns=fixed)
        runs = mlflow.search_runs(
            experiment_ids=list(found),
            filter_string=" and ".join(
                filter(None, ["attributes.status = 'FINISHED'", filter_string])
            ),
            max_results=max_results,
            order_by=["attributes.start_time DESC"],
        )
    if runs.empty:
        return pd.DataFrame(columns=fixed)
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": runs.get("tags.mlflow.runName"),
            "experiment": runs["experiment_id"].map(found),
            "model": runs.get("tags.model_family"),
            "dataset": runs.get("tags.dataset"),
            "evaluation_fingerprint": runs.get("tags.evaluation_fingerprint"),
            "start_time": runs["start_time"],
        }
    )
    for column in sorted(c for c in runs.columns if c.startswith("metrics.")):
        table[column.removeprefix("metrics.").replace("_at_", "@")] = runs[column]
    return table.reset_index(drop=True)
