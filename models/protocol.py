"""The offline evaluation protocol: one function from a dataset to a results document.

Per seed: a per-user random holdout (``test_fraction`` of each user's items) is the test
split; a validation split is carved from the training part only, each model is tuned on it
(Optuna, NDCG@K), refitted on the whole training part with the best parameters and scored
once on the test split: full ranking over every item, training items filtered, binary
relevance. Results are mean and standard deviation over seeds. For the lake, the split is
by time instead (see :func:`models.splits.time_split`).
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models import create_recommender
from models.datasets import fingerprint, load_dataset
from models.evaluation import evaluate
from models.interactions import InteractionDataset
from models.splits import cold_item_split, holdout_split, time_split
from models.tuning import tune_ensemble_weights, tune_model, validation_split

if TYPE_CHECKING:
    from encore.settings import Settings

# Default Optuna trials per model: cheap models get more; LightFM (tens of seconds a fit)
# fewer. Scaled by the `trials` multiplier of run_protocol.
DEFAULT_TRIALS = {
    "itemknn": 15,
    "ease": 12,
    "tagease": 15,
    "rp3beta": 15,
    "tagknn": 8,
    "als": 25,
    "bpr": 10,
    "item2vec": 8,
    "lightfm": 4,
}
# What the ensemble blends by default (each member tuned first on the same validation)
ENSEMBLE_MEMBERS = ("tagease", "als", "rp3beta", "itemknn", "tagknn", "item2vec")

Report = Callable[[str], None]


@dataclass
class ProtocolConfig:
    models: list[str]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    test_fraction: float = 0.1
    validation_fraction: float = 0.1
    k: int = 10
    trials: float = 1.0
    """Multiplier of DEFAULT_TRIALS; 0 disables tuning (default parameters)."""
    split: str = "holdout"
    """``holdout`` (per-user random) or ``time`` (needs events)."""
    cold_start: bool = False
    """Also evaluate item cold start (10% of items held out entirely) for feature models."""
    model_trials: dict[str, int] = field(default_factory=dict)
    """Absolute trial counts overriding ``DEFAULT_TRIALS * trials`` for some models."""


def _summarise(per_seed: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in per_seed[0]:
        values = [float(run[key]) for run in per_seed]
        out[key] = statistics.fmean(values)
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def _split(dataset: InteractionDataset, config: ProtocolConfig, seed: int):
    if config.split == "time":
        if dataset.events is None:
            raise ValueError(f"dataset {dataset.name} has no events for a time split")
        train, test, cut = time_split(dataset.events, dataset.shape, config.test_fraction)
        return train, test, {"time_cut": cut}
    train, test = holdout_split(dataset.user_items, config.test_fraction, seed=seed)
    return train, test, {}


def run_protocol(
    dataset: InteractionDataset, config: ProtocolConfig, report: Report = lambda _: None
) -> dict[str, Any]:
    """Tune, fit and score every model in ``config`` on ``dataset``; a JSON-able document."""
    k = config.k
    seeds = config.seeds if config.split == "holdout" else config.seeds[:1]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in config.models}
    chosen: dict[str, list[dict[str, Any]]] = {name: [] for name in config.models}
    fingerprints = []
    features = dataset.item_features
    for seed in seeds:
        train, test, split_info = _split(dataset, config, seed)
        fingerprints.append({"seed": seed, "test_sha256": fingerprint(test), **split_info})
        fit_part, validation = validation_split(train, config.validation_fraction, seed=seed)
        tuned: dict[str, dict[str, Any]] = {}

        def tuned_params(
            name: str,
            seed: int = seed,
            tuned: dict = tuned,
            fit_part: Any = fit_part,
            validation: Any = validation,
        ) -> dict[str, Any]:
            if name not in tuned:
                trials = config.model_trials.get(
                    name, round(DEFAULT_TRIALS.get(name, 0) * config.trials)
                )
                started = time.perf_counter()
                tuned[name], value = tune_model(
                    name, fit_part, validation, features, trials=trials, seed=seed, k=k
                )
                report(
                    f"seed {seed}: tuned {name} in {time.perf_counter() - started:.0f} s "
                    f"(validation ndcg@{k} {value:.4f})"
                )
            return tuned[name]

        for name in config.models:
            if name == "ensemble":
                members = {m: tuned_params(m) for m in ENSEMBLE_MEMBERS}
                if config.trials > 0:
                    members, value = tune_ensemble_weights(
                        members,
                        fit_part,
                        validation,
                        features,
                        trials=round(60 * config.trials),
                        seed=seed,
                        k=k,
                    )
                    report(f"seed {seed}: tuned ensemble weights (validation {value:.4f})")
                params: dict[str, Any] = {"members": members}
            else:
                params = tuned_params(name)
            started = time.perf_counter()
            model = create_recommender(name, **params).fit(train, item_features=features)
            fit_seconds = time.perf_counter() - started
            metrics = evaluate(model, train, test, k)
            metrics["fit_seconds"] = fit_seconds
            runs[name].append(metrics)
            chosen[name].append(params)
            report(
                f"seed {seed}: {name} ndcg@{k}={metrics[f'ndcg@{k}']:.4f} (fit {fit_seconds:.1f} s)"
            )
        if config.cold_start:
            _cold_start(dataset, config, seed, tuned, runs, chosen, report)

    return {
        "protocol": {
            "dataset": dataset.describe(),
            "lineage": dataset.lineage,
            "split": config.split,
            "test_fraction": config.test_fraction,
            "validation_fraction": config.validation_fraction,
            "seeds": seeds,
            "k": k,
            "ranking": "full ranking over every item, training items filtered",
            "relevance": "binary (any play of a held-out item is relevant)",
            "tuning": (
                f"Optuna TPE on NDCG@{k} of a validation split carved from each seed's "
                f"training part; trials multiplier {config.trials}"
            ),
            "evaluation_data": fingerprints,
            "machine": {"python": platform.python_version(), "cpus": _cpus()},
        },
        "models": {name: _summarise(rows) for name, rows in runs.items() if rows},
        "per_seed": runs,
        "params": chosen,
    }


def merge_results(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """One document from runs of the same protocol on different seeds (run in parallel)."""
    first = documents[0]
    runs: dict[str, list[dict[str, float]]] = {}
    params: dict[str, list[Any]] = {}
    for document in documents:
        for name, rows in document["per_seed"].items():
            runs.setdefault(name, []).extend(rows)
            params.setdefault(name, []).extend(document["params"].get(name, []))
    protocol = dict(first["protocol"])
    protocol["seeds"] = [s for d in documents for s in d["protocol"]["seeds"]]
    protocol["evaluation_data"] = [e for d in documents for e in d["protocol"]["evaluation_data"]]
    return {
        "protocol": protocol,
        "models": {name: _summarise(rows) for name, rows in runs.items() if rows},
        "per_seed": runs,
        "params": params,
    }


def _cold_start(dataset, config, seed, tuned, runs, chosen, report) -> None:
    """Items held out entirely; rank only the cold items for each user."""
    if dataset.item_features is None:
        return
    train, test, cold = cold_item_split(dataset.user_items, 0.1, seed=seed)
    for name, params in (
        ("lightfm-cold", {**tuned.get("lightfm", {}), "use_features": True}),
        ("lightfm-nofeatures-cold", {**tuned.get("lightfm", {}), "use_features": False}),
        ("tagknn-cold", tuned.get("tagknn", {})),
        ("pop-cold", {}),
    ):
        model_name = name.split("-")[0]
        model = create_recommender(model_name, **params).fit(
            train, item_features=dataset.item_features
        )
        metrics = evaluate(model, train, test, config.k, items=cold)
        runs.setdefault(name, []).append(metrics)
        chosen.setdefault(name, []).append(params)
        report(f"seed {seed}: {name} ndcg@{config.k}={metrics[f'ndcg@{config.k}']:.4f}")


@dataclass
class EvaluationOutcome:
    """What one ``encore evaluate`` produced: the document, its table and where they went."""

    results: dict[str, Any]
    text: str
    """The markdown table, then the quality-goal line when there is a baseline to beat."""
    written: tuple[Path, Path]
    """The JSON document and the markdown table beside it."""


def split_for(dataset: InteractionDataset) -> str:
    """``time`` for the lake (real listening order), ``holdout`` for everything else."""
    return "time" if dataset.name == "lake" and dataset.events is not None else "holdout"


def run_evaluation(
    settings: Settings,
    dataset: str,
    config: ProtocolConfig,
    out: Path,
    merge: Sequence[Path] = (),
    report: Report = lambda _: None,
) -> EvaluationOutcome:
    """``encore evaluate``: load, run the protocol (or merge earlier runs), write, summarise.

    Args:
        dataset: a name :func:`models.datasets.load_dataset` knows; its split (time for
            the lake, holdout otherwise) overrides ``config.split``.
        merge: result files of the same protocol on other seeds; when given, nothing is
            run and ``dataset`` is not loaded.
        out: the JSON document; the markdown table goes beside it (``.md``).

    Raises:
        DatasetError: the dataset is unknown or cannot be loaded.
    """
    if merge:
        results = merge_results([json.loads(Path(path).read_text()) for path in merge])
    else:
        report(f"loading {dataset}")
        data = load_dataset(dataset, settings)
        report(f"dataset: {data.describe()}")
        results = run_protocol(data, replace(config, split=split_for(data)), report)
    return write_results(results, out, config.k)


def write_results(results: dict[str, Any], out: Path, k: int = 10) -> EvaluationOutcome:
    """Add the quality goal (best model vs best baseline), write the JSON and the table."""
    from models import BASELINES

    results["goal"] = relative_gain(results, BASELINES, k)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    table = markdown_table(results, k)
    table_path = out.with_suffix(".md")
    table_path.write_text(table + "\n")
    text = table
    if goal := results["goal"]:
        text += (
            f"\n\nbest model {goal['best_model']} {goal['best_model_ndcg']:.4f} vs best "
            f"baseline {goal['best_baseline']} {goal['best_baseline_ndcg']:.4f}: "
            f"{goal['gain']:+.1%}"
        )
    return EvaluationOutcome(results, text, (out, table_path))


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def markdown_table(results: dict[str, Any], k: int = 10) -> str:
    """The results as markdown, mean ± std over seeds, best first by NDCG@k.

    Cold-start rows (``*-cold``, candidates restricted to the held-out items) get their own
    table: their numbers are not comparable with full-catalogue ranking.
    """
    columns = ["ndcg", "precision", "recall", "map", "hit_rate", "coverage", "novelty"]

    def table(rows: list[tuple[str, dict[str, float]]]) -> list[str]:
        header = "| model | " + " | ".join(f"{c}@{k}" for c in columns) + " | fit s |"
        lines = [header, "|" + "---|" * (len(columns) + 2)]
        for name, m in sorted(rows, key=lambda item: -item[1].get(f"ndcg@{k}", 0.0)):
            cells = [
                f"{m[f'{c}@{k}']:.4f} ± {m[f'{c}@{k}_std']:.4f}" if f"{c}@{k}" in m else "-"
                for c in columns
            ]
            fit = f"{m['fit_seconds']:.1f}" if "fit_seconds" in m else "-"
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {fit} |")
        return lines

    warm = [(n, m) for n, m in results["models"].items() if not n.endswith("-cold")]
    cold = [(n, m) for n, m in results["models"].items() if n.endswith("-cold")]
    lines = table(warm)
    if cold:
        lines += ["", "Item cold start (10% of items held out entirely; ranking among them):", ""]
        lines += table(cold)
    return "\n".join(lines)


def relative_gain(results: dict[str, Any], baselines: tuple[str, ...], k: int = 10) -> dict:
    """Best non-baseline model vs the best baseline on NDCG@k (the quality goal)."""
    metric = f"ndcg@{k}"
    models = {n: m[metric] for n, m in results["models"].items() if not n.endswith("-cold")}
    base = {n: v for n, v in models.items() if n in baselines}
    ours = {n: v for n, v in models.items() if n not in baselines}
    if not base or not ours:
        return {}
    best_base = max(base, key=base.get)
    best_ours = max(ours, key=ours.get)
    return {
        "best_baseline": best_base,
        "best_baseline_ndcg": base[best_base],
        "best_model": best_ours,
        "best_model_ndcg": ours[best_ours],
        "gain": ours[best_ours] / base[best_base] - 1 if base[best_base] else float("nan"),
        "seeds": len(results["protocol"]["seeds"]),
    }
