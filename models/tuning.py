"""Hyper-parameter tuning on a validation split carved from training data only.

The test split is never seen here: :func:`validation_split` holds out part of each user's
*training* items, models are fitted on the rest, and Optuna maximises NDCG@10 on the
held-out part. Ensembles are tuned in two steps: members first, then the blend weights on
cached member scores (no refitting per trial).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from models import create_recommender
from models.base import top_n
from models.ensemble import EnsembleRecommender
from models.evaluation import evaluate, ranking_metrics
from models.splits import holdout_split

log = logging.getLogger(__name__)

VALIDATION_SEED_OFFSET = 10_000


def validation_split(
    train: sp.csr_matrix, fraction: float = 0.1, seed: int = 0
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(fit part, validation part)`` of a training matrix, by per-user random holdout."""
    return holdout_split(train, fraction, seed=seed + VALIDATION_SEED_OFFSET)


# Optuna search spaces: trial -> params. Ranges come from the published defaults of each
# method and a look at HetRec's scale (1.9k users, 17.6k artists, ~49 artists per user).
SEARCH_SPACES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "itemknn": lambda t: {
        "k": t.suggest_int("k", 10, 400, log=True),
        "shrink": t.suggest_float("shrink", 0.0, 50.0),
        "weighting": t.suggest_categorical("weighting", ["binary", "log", "bm25"]),
    },
    "ease": lambda t: {
        "l2": t.suggest_float("l2", 5.0, 2000.0, log=True),
        "weighting": t.suggest_categorical("weighting", ["binary", "log"]),
    },
    "tagease": lambda t: {
        "l2": t.suggest_float("l2", 20.0, 1000.0, log=True),
        "tag_weight": t.suggest_float("tag_weight", 0.2, 4.0, log=True),
        "min_tag_items": t.suggest_int("min_tag_items", 2, 6),
    },
    "rp3beta": lambda t: {
        "alpha": t.suggest_float("alpha", 0.3, 1.5),
        "beta": t.suggest_float("beta", 0.0, 0.7),
        "k": t.suggest_int("k", 20, 500, log=True),
    },
    "tagknn": lambda t: {
        "k": t.suggest_int("k", 10, 400, log=True),
        "weighting": t.suggest_categorical("weighting", ["binary", "log"]),
    },
    "als": lambda t: {
        "factors": t.suggest_categorical("factors", [32, 64, 128, 192]),
        "regularization": t.suggest_float("regularization", 1e-3, 10.0, log=True),
        "alpha": t.suggest_float("alpha", 0.1, 20.0, log=True),
        "iterations": t.suggest_int("iterations", 8, 30),
        "weighting": t.suggest_categorical("weighting", ["log", "bm25", "binary"]),
        "K1": t.suggest_float("K1", 1.0, 200.0, log=True),
        "B": t.suggest_float("B", 0.0, 1.0),
    },
    "bpr": lambda t: {
        "factors": t.suggest_categorical("factors", [32, 64, 128]),
        "learning_rate": t.suggest_float("learning_rate", 1e-3, 0.2, log=True),
        "regularization": t.suggest_float("regularization", 1e-5, 0.1, log=True),
        "iterations": t.suggest_int("iterations", 50, 400, log=True),
    },
    "item2vec": lambda t: {
        "factors": t.suggest_categorical("factors", [32, 64, 128, 256]),
        "negative": t.suggest_float("negative", 1.0, 10.0, log=True),
        "cds": t.suggest_float("cds", 0.5, 1.0),
        "weighting": t.suggest_categorical("weighting", ["binary", "log"]),
    },
    "lightfm": lambda t: {
        "no_components": t.suggest_categorical("no_components", [32, 64, 128]),
        "learning_rate": t.suggest_float("learning_rate", 0.01, 0.1, log=True),
        "item_alpha": t.suggest_float("item_alpha", 1e-8, 1e-4, log=True),
        "user_alpha": t.suggest_float("user_alpha", 1e-8, 1e-4, log=True),
        "epochs": t.suggest_int("epochs", 10, 40),
        "tag_weight": t.suggest_float("tag_weight", 0.1, 3.0, log=True),
    },
}


def model_defaults(name: str) -> dict[str, Any]:
    """The constructor defaults of a registered model (scalars only)."""
    import inspect

    from models import recommender_classes

    signature = inspect.signature(recommender_classes()[name].__init__)
    return {
        key: p.default
        for key, p in signature.parameters.items()
        if p.default is not inspect.Parameter.empty
        and isinstance(p.default, int | float | str | bool)
    }


def tune_model(
    name: str,
    fit_part: sp.csr_matrix,
    validation: sp.csr_matrix,
    item_features: sp.csr_matrix | None = None,
    trials: int = 20,
    seed: int = 0,
    fixed: dict[str, Any] | None = None,
    k: int = 10,
) -> tuple[dict[str, Any], float]:
    """Best params of ``name`` by validation NDCG@k; returns ``(params, best value)``.

    Models without a search space (``pop``) return ``fixed`` untouched.
    """
    import optuna

    fixed = dict(fixed or {})
    if name not in SEARCH_SPACES or trials <= 0:
        return fixed, float("nan")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        params = {**SEARCH_SPACES[name](trial), **fixed}
        model = create_recommender(name, **params).fit(fit_part, item_features=item_features)
        return evaluate(model, fit_part, validation, k)[f"ndcg@{k}"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    # the model's defaults are always the first trial: tuning can only improve on them
    study.enqueue_trial(model_defaults(name), skip_if_exists=True)
    study.optimize(objective, n_trials=trials)
    log.info("tuned %s: ndcg@%d=%.4f %s", name, k, study.best_value, study.best_params)
    return {**study.best_params, **fixed}, float(study.best_value)


def tune_ensemble_weights(
    members: dict[str, dict[str, Any]],
    fit_part: sp.csr_matrix,
    validation: sp.csr_matrix,
    item_features: sp.csr_matrix | None = None,
    trials: int = 60,
    seed: int = 0,
    k: int = 10,
) -> tuple[dict[str, dict[str, Any]], float]:
    """Blend weights for fitted members, by validation NDCG@k on cached member scores.

    Returns:
        ``(members with weights, best validation NDCG@k)``.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    blend = EnsembleRecommender({n: {**p, "weight": 1.0} for n, p in members.items()})
    blend.fit(fit_part, item_features=item_features)
    users = np.flatnonzero(np.diff(validation.indptr) > 0)
    rows = fit_part[users]
    cached = blend.member_scores(users, rows)
    seen_r, seen_c = rows.nonzero()
    empty = np.diff(rows.indptr) == 0
    names = list(cached)

    def score(weights: dict[str, float]) -> float:
        total = sum(weights[n] * cached[n] for n in names)
        total[empty] = blend.fallback_popularity  # as Recommender.recommend does
        total[seen_r, seen_c] = -np.inf
        ids, _ = top_n(total, k)
        return ranking_metrics(ids, validation, users, k)[f"ndcg@{k}"]

    def objective(trial: optuna.Trial) -> float:
        return score({n: trial.suggest_float(n, 0.0, 1.0) for n in names})

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(dict.fromkeys(names, 1.0))
    study.optimize(objective, n_trials=trials)
    weights = study.best_params
    log.info("tuned ensemble weights: ndcg@%d=%.4f %s", k, study.best_value, weights)
    return (
        {n: {**members[n], "weight": float(weights[n])} for n in names},
        float(study.best_value),
    )
