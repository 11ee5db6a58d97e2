"""EASE (Steck 2019): a closed-form item-item linear model with a zero diagonal.

``B = I - P·diag(1/diag(P))`` with ``P = (XᵀX + λI)⁻¹``. With more items than users
(HetRec: 17,632 artists, 1,892 users) the items x items inverse is costly, so the model
uses the Woodbury identity ``P = (I - Xᵀ(XXᵀ + λI)⁻¹X)/λ`` and keeps only the users x users
inverse: scores are exact, memory is ``users²`` instead of ``items²``.

With ``tag_weight > 0`` and item features, every tag becomes a pseudo-user who "played"
the artists carrying it (weight ``tag_weight``), so artists sharing tags predict each
other even with few common listeners (side-information EASE, as in Jeunen et al. 2020).
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from models.base import ModelError, Recommender, check_csr, weight


class EASERecommender(Recommender):
    """EASE with L2 strength ``l2`` (λ) on binary (or re-weighted) interactions."""

    name = "ease"

    def __init__(
        self,
        l2: float = 100.0,
        weighting: str = "binary",
        tag_weight: float = 0.0,
        min_tag_items: int = 2,
    ) -> None:
        super().__init__(
            l2=l2, weighting=weighting, tag_weight=tag_weight, min_tag_items=min_tag_items
        )
        self.B: np.ndarray | None = None
        self.X: sp.csr_matrix | None = None
        self.M: np.ndarray | None = None
        self.diag_p: np.ndarray | None = None

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> Self:
        x = weight(check_csr(user_items), self.params["weighting"]).astype(np.float64)
        tag_weight = float(self.params["tag_weight"])
        if tag_weight > 0 and item_features is not None:
            tags = sp.csr_matrix(check_csr(item_features, "item_features").T)
            tags.data[:] = 1.0
            tags = tags[np.diff(tags.indptr) >= int(self.params["min_tag_items"])]
            x = sp.vstack([x, tag_weight * tags.astype(np.float64)]).tocsr()
        lam = float(self.params["l2"])
        n_users, n_items = x.shape
        if n_items <= n_users:
            gram = (x.T @ x).toarray()
            gram[np.diag_indices(n_items)] += lam
            p = np.linalg.inv(gram)
            b = p / (-np.diag(p))
            b[np.diag_indices(n_items)] = 0.0
            self.B, self.X, self.M = b.astype(np.float32), None, None
        else:
            gram = (x @ x.T).toarray()
            gram[np.diag_indices(n_users)] += lam
            m = np.linalg.inv(gram)
            xt_m = np.asarray(x.T @ m)  # items x users
            self.diag_p = (1.0 - np.asarray(x.T.multiply(xt_m).sum(axis=1)).ravel()) / lam
            self.X, self.M, self.B = sp.csr_matrix(x), m, None
        self._fitted_on(user_items)
        return self

    def score(self, userids: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        y = weight(user_items, self.params["weighting"])
        if self.B is not None:
            return np.asarray(y @ self.B)
        lam = float(self.params["l2"])
        y64 = y.astype(np.float64)
        yp = (y64.toarray() - np.asarray((y64 @ self.X.T) @ self.M) @ self.X) / lam
        return y64.toarray() - yp / self.diag_p

    def item_similarity(self, itemid: int) -> np.ndarray:
        if self.B is not None:
            return self.B[itemid].copy()
        lam = float(self.params["l2"])
        column = np.asarray(self.X[:, itemid].todense()).ravel()
        p_i = -(self.X.T @ (self.M @ column)) / lam
        p_i[itemid] += 1.0 / lam
        out = -p_i / self.diag_p[itemid]
        out[itemid] = 0.0
        return out


class TagEASERecommender(EASERecommender):
    """EASE with artist tags as pseudo-users (the hybrid; needs item features)."""

    name = "tagease"
    uses_item_features = True

    def __init__(
        self,
        l2: float = 100.0,
        weighting: str = "binary",
        tag_weight: float = 1.0,
        min_tag_items: int = 2,
    ) -> None:
        super().__init__(
            l2=l2, weighting=weighting, tag_weight=tag_weight, min_tag_items=min_tag_items
        )

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> Self:
        if item_features is None:
            raise ModelError("tagease needs item_features (artist tags); none given")
        return super().fit(user_items, item_features, show_progress)
