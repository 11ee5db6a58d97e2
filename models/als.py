"""Implicit-feedback ALS (Hu, Koren, Volinsky 2008) through implicit's CPU solver."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from models.base import Recommender, check_csr, weight


class ALSRecommender(Recommender):
    """Weighted matrix factorisation by alternating least squares (conjugate gradient).

    Args:
        factors: vector size.
        regularization: L2 strength.
        alpha: confidence scale on the weighted counts (``C = 1 + alpha * w``).
        iterations: ALS sweeps.
        weighting: how raw play counts become ``w``: ``bm25``, ``log``, ``binary``...
        K1, B: BM25 parameters.
        seed: random state of the initial factors.
        num_threads: 0 uses every core.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 1.0,
        alpha: float = 2.0,
        iterations: int = 15,
        weighting: str = "log",
        K1: float = 100.0,
        B: float = 0.8,
        seed: int = 0,
        num_threads: int = 0,
    ) -> None:
        super().__init__(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            weighting=weighting,
            K1=K1,
            B=B,
            seed=seed,
            num_threads=num_threads,
        )
        self.model = None

    def _weighted(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        p = self.params
        return weight(user_items, p["weighting"], K1=p["K1"], B=p["B"])

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        p = self.params
        csr = check_csr(user_items)
        # implicit's solver parallelises itself; a BLAS thread pool on top oversubscribes,
        # and implicit warns about it when the model is built: pin BLAS to one thread for
        # construction and fit alike (this is the library path the CLI and benchmarks use)
        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(
                factors=int(p["factors"]),
                regularization=float(p["regularization"]),
                alpha=float(p["alpha"]),
                iterations=int(p["iterations"]),
                random_state=int(p["seed"]),
                num_threads=int(p["num_threads"]),
            )
            self.model.fit(self._weighted(csr), show_progress=show_progress)
        self._fitted_on(user_items)
        return self

    @property
    def item_factors(self) -> np.ndarray | None:
        return None if self.model is None else np.asarray(self.model.item_factors)

    @property
    def user_factors(self) -> np.ndarray | None:
        return None if self.model is None else np.asarray(self.model.user_factors)

    def score(self, userids: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        # user ids are rows of the fitted matrix (checked once, in Recommender.recommend)
        return self.model.user_factors[userids] @ self.model.item_factors.T
