"""Most-popular baseline: every user gets the artists the most listeners played."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from models.base import Recommender, check_csr


class PopularityRecommender(Recommender):
    """Scores an item by how many users played it (``by="users"``) or total plays."""

    name = "pop"

    def __init__(self, by: str = "users") -> None:
        super().__init__(by=by)
        self.popularity = np.zeros(0, dtype=np.float32)

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> Self:
        csr = check_csr(user_items)
        if self.params["by"] == "users":
            self.popularity = np.diff(csr.tocsc().indptr).astype(np.float32)
        else:
            self.popularity = np.asarray(csr.sum(axis=0)).ravel().astype(np.float32)
        self._fitted_on(user_items)
        return self

    def score(self, userids: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.popularity, (len(userids), 1))

    def item_similarity(self, itemid: int) -> np.ndarray:
        # popularity has no notion of similarity: similar = popular
        return self.popularity.copy()
