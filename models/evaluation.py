"""Offline evaluation: ranking metrics over a full ranking of every item.

Definitions (binary relevance: an item is relevant iff it is in the user's test set T;
R_K is the top-K list after filtering the user's training items):

- precision@K = |R_K ∩ T| / K
- recall@K = |R_K ∩ T| / |T|
- ndcg@K = DCG / IDCG with DCG = Σ_{r ∈ hits} 1 / log2(rank_r + 1) (ranks from 1) and
  IDCG the DCG of min(|T|, K) hits at the top
- map@K = (1 / min(|T|, K)) Σ_{k ≤ K, item_k ∈ T} precision@k
- hit_rate@K = 1 if R_K ∩ T ≠ ∅
- coverage@K = distinct items recommended over all test users / catalogue size
- novelty@K = mean over recommended items of -log2(p_i), p_i = (users who played i in
  train + 1) / (users + 1) (smoothed so unplayed items stay finite)

Metrics are averaged over users with at least one test item.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from models.base import Recommender

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage", "novelty")


def ranking_metrics(
    recommended: np.ndarray,
    test: sp.csr_matrix,
    users: np.ndarray,
    k: int,
    item_popularity: np.ndarray | None = None,
    n_users: int | None = None,
) -> dict[str, float]:
    """Mean ranking metrics of ``recommended`` (rows align with ``users``, -1 pads).

    Args:
        recommended: ``(len(users), >= k)`` item ids, best first; -1 means no item.
        test: users x items relevant items (any non-zero is relevant).
        users: the user ids the rows of ``recommended`` belong to.
        k: cut-off.
        item_popularity: users per item in train, for novelty (omitted: no novelty).
        n_users: users in train, for novelty.
    """
    recommended = np.asarray(recommended)[:, :k]
    n_items = test.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    sums = dict.fromkeys(("precision", "recall", "ndcg", "map", "hit_rate"), 0.0)
    counted = 0
    for row, user in enumerate(users):
        relevant = test.indices[test.indptr[user] : test.indptr[user + 1]]
        if len(relevant) == 0:
            continue
        counted += 1
        hits = np.isin(recommended[row], relevant) & (recommended[row] >= 0)
        n_hits = hits.sum()
        ideal = min(len(relevant), k)
        sums["precision"] += n_hits / k
        sums["recall"] += n_hits / len(relevant)
        sums["ndcg"] += (discounts[: len(hits)][hits]).sum() / discounts[:ideal].sum()
        precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        sums["map"] += (precision_at[hits]).sum() / ideal
        sums["hit_rate"] += float(n_hits > 0)
    result = {f"{name}@{k}": value / max(counted, 1) for name, value in sums.items()}
    shown = recommended[recommended >= 0]
    result[f"coverage@{k}"] = len(np.unique(shown)) / n_items
    if item_popularity is not None and n_users:
        p = (np.asarray(item_popularity, dtype=np.float64) + 1) / (n_users + 1)
        result[f"novelty@{k}"] = float(-np.log2(p[shown]).mean()) if len(shown) else 0.0
    result["users"] = counted
    return result


def recommend_all(
    model: Recommender,
    train: sp.csr_matrix,
    users: np.ndarray,
    n: int,
    batch_size: int = 512,
    items: np.ndarray | None = None,
) -> np.ndarray:
    """Top-``n`` ids for ``users`` (training items filtered), in batches; -1 pads."""
    out = np.full((len(users), n), -1, dtype=np.int64)
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        ids, _ = model.recommend(batch, train[batch], N=n, items=items)
        out[start : start + len(batch), : ids.shape[1]] = ids
    return out


@dataclass
class Evaluation:
    """Metrics of one fitted model on one split."""

    metrics: dict[str, float]
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def evaluate(
    model: Recommender,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    k: int = 10,
    items: np.ndarray | None = None,
) -> dict[str, float]:
    """Evaluate a fitted ``model``: full ranking (or among ``items``), train items filtered."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    started = time.perf_counter()
    recommended = recommend_all(model, train, users, k, items=items)
    popularity = np.diff(sp.csc_matrix(train).indptr)
    metrics = ranking_metrics(recommended, test, users, k, popularity, train.shape[0])
    metrics["predict_seconds"] = time.perf_counter() - started
    return metrics
