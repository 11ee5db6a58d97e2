"""Bayesian Personalised Ranking (Rendle et al. 2009) through implicit's CPU solver."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from models.base import Recommender, check_csr, weight


class BPRRecommender(Recommender):
    """Matrix factorisation trained on (user, played, not played) triples by SGD.

    BPR only sees which items a user played, so ``weighting`` defaults to ``binary``.
    """

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        weighting: str = "binary",
        seed: int = 0,
        num_threads: int = 0,
    ) -> None:
        super().__init__(
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            iterations=iterations,
            weighting=weighting,
            seed=seed,
            num_threads=num_threads,
        )
        self.model = None

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> Self:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        p = self.params
        self.model = BayesianPersonalizedRanking(
            factors=int(p["factors"]),
            learning_rate=float(p["learning_rate"]),
            regularization=float(p["regularization"]),
            iterations=int(p["iterations"]),
            random_state=int(p["seed"]),
            num_threads=int(p["num_threads"]),
        )
        csr = check_csr(user_items)
        self.model.fit(weight(csr, p["weighting"]), show_progress=show_progress)
        self._fitted_on(user_items)
        return self

    @property
    def item_factors(self) -> np.ndarray | None:
        # implicit appends an item bias column (users get a matching column of ones)
        return None if self.model is None else np.asarray(self.model.item_factors)

    @property
    def user_factors(self) -> np.ndarray | None:
        return None if self.model is None else np.asarray(self.model.user_factors)

    def score(self, userids: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return self.model.user_factors[userids] @ self.model.item_factors.T
