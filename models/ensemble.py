"""A weighted blend of recommenders, each member's scores standardised per user.

Members are any registered models; the weights (and members' parameters) are tuned on a
validation split carved from training data (see :mod:`models.tuning`).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from models.base import ModelError, Recommender, check_csr


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores, so members on different scales blend fairly."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    std[std == 0] = 1.0
    return (scores - mean) / std


class EnsembleRecommender(Recommender):
    """``score = Σ weight_m · z(score_m)`` over fitted members.

    Args:
        members: ``{model name: {"weight": w, **model params}}``.
    """

    name = "ensemble"
    uses_item_features = True

    def __init__(self, members: dict[str, dict[str, Any]] | None = None) -> None:
        members = members or {
            "ease": {"weight": 1.0, "l2": 200.0},
            "rp3beta": {"weight": 1.0},
            "als": {"weight": 1.0},
        }
        super().__init__(members=members)
        self.models: dict[str, Recommender] = {}
        self.weights: dict[str, float] = {}

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> Self:
        from models import create_recommender

        csr = check_csr(user_items)
        self.models, self.weights = {}, {}
        for name, spec in self.params["members"].items():
            spec = dict(spec)
            weight = float(spec.pop("weight", 1.0))
            if weight == 0:
                continue
            model = create_recommender(name, **spec)
            if model.uses_item_features and item_features is None:
                raise ModelError(f"ensemble member {name} needs item_features; none given")
            self.models[name] = model.fit(csr, item_features=item_features)
            self.weights[name] = weight
        if not self.models:
            raise ModelError("ensemble has no member with a non-zero weight")
        self._fitted_on(user_items)
        return self

    def member_scores(self, userids: np.ndarray, user_items: sp.csr_matrix) -> dict:
        """Each member's standardised scores (for tuning the weights without refitting)."""
        return {
            name: standardise(np.asarray(model.score(userids, user_items), np.float32))
            for name, model in self.models.items()
        }

    def score(self, userids: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        total = np.zeros((len(userids), self.n_items), np.float32)
        for name, scores in self.member_scores(userids, user_items).items():
            total += self.weights[name] * scores
        return total

    def item_similarity(self, itemid: int) -> np.ndarray:
        total = np.zeros(self.n_items, np.float32)
        for name, model in self.models.items():
            sim = np.asarray(model.item_similarity(itemid), np.float32)[None, :]
            total += self.weights[name] * standardise(sim)[0]
        return total
