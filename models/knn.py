"""Neighbourhood models over item-item similarity matrices.

- :class:`ItemKNNRecommender`: cosine item-kNN (the classic baseline), with shrinkage.
- :class:`RP3BetaRecommender`: the RP3beta random walk (Paudel et al. 2016), a 3-step
  user-item-user-item walk with popularity re-ranking; strong on music data.
- :class:`TagKNNRecommender`: content kNN over artist tags (item features).

Each scores ``user_items @ W`` with ``W[i, j]`` how much playing ``i`` says about ``j``.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from models.base import ModelError, Recommender, check_csr, normalize_rows, top_k_sparse, weight


class _SimilarityRecommender(Recommender):
    """Shared scoring for models that learn one sparse item-item matrix ``W``."""

    weighting_param = "weighting"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.W = sp.csr_matrix((0, 0), dtype=np.float32)

    def _input(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        return weight(user_items, str(self.params.get("weighting", "none")))

    def score(self, userids: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return np.asarray((self._input(user_items) @ self.W).todense())

    def item_similarity(self, itemid: int) -> np.ndarray:
        return np.asarray(self.W[itemid].todense()).ravel()


class ItemKNNRecommender(_SimilarityRecommender):
    """Cosine item-kNN: ``sim(i, j) = x_i·x_j / (|x_i||x_j| + shrink)``, top-k per item."""

    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0, weighting: str = "binary") -> None:
        super().__init__(k=k, shrink=shrink, weighting=weighting)

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> Self:
        x = self._input(check_csr(user_items)).tocsc()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        gram = sp.csr_matrix(x.T @ x)
        gram.setdiag(0)
        gram.eliminate_zeros()
        coo = gram.tocoo()
        denom = norms[coo.row] * norms[coo.col] + float(self.params["shrink"]) + 1e-9
        sim = sp.csr_matrix((coo.data / denom, (coo.row, coo.col)), shape=gram.shape)
        # neighbours of target j are the k most similar sources: prune columns
        self.W = sp.csr_matrix(top_k_sparse(sim.T, int(self.params["k"])).T)
        self._fitted_on(user_items)
        return self


class RP3BetaRecommender(_SimilarityRecommender):
    """RP3beta: ``W = (P_iu^α P_ui^α) / pop_j^β``, top-k per item.

    ``P_ui`` is the row-normalised user->item transition matrix of the binarised
    interactions, ``P_iu`` the item->user one; ``β`` discounts popular destinations.
    """

    name = "rp3beta"

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, k: int = 200) -> None:
        super().__init__(alpha=alpha, beta=beta, k=k, weighting="binary")

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> Self:
        x = weight(check_csr(user_items), "binary")
        alpha, beta = float(self.params["alpha"]), float(self.params["beta"])
        p_ui = normalize_rows(x, "l1")
        p_iu = normalize_rows(x.T, "l1")
        p_ui.data **= alpha
        p_iu.data **= alpha
        walk = sp.csr_matrix(p_iu @ p_ui)
        popularity = np.diff(x.tocsc().indptr).astype(np.float64)
        damp = np.where(popularity > 0, popularity, 1.0) ** -beta
        walk = sp.csr_matrix(walk @ sp.diags(damp.astype(np.float32)))
        walk.setdiag(0)
        walk.eliminate_zeros()
        self.W = top_k_sparse(walk, int(self.params["k"]))
        self._fitted_on(user_items)
        return self


class TagKNNRecommender(_SimilarityRecommender):
    """Content kNN: cosine similarity of artists' TF-IDF tag vectors, top-k per item."""

    name = "tagknn"
    uses_item_features = True

    def __init__(self, k: int = 100, weighting: str = "binary") -> None:
        super().__init__(k=k, weighting=weighting)

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> Self:
        x = check_csr(user_items)
        if item_features is None or item_features.shape[0] != x.shape[1]:
            got = "none" if item_features is None else f"{item_features.shape[0]} rows"
            raise ModelError(
                f"tagknn needs item_features with one row per item ({x.shape[1]}); got {got}"
            )
        features = check_csr(item_features, "item_features")
        features.data[:] = np.log1p(features.data)
        document_frequency = np.diff(features.tocsc().indptr).astype(np.float64)
        idf = np.log((1 + features.shape[0]) / (1 + document_frequency)) + 1
        features = normalize_rows(features @ sp.diags(idf.astype(np.float32)))
        sim = sp.csr_matrix(features @ features.T)
        sim.setdiag(0)
        sim.eliminate_zeros()
        self.W = sp.csr_matrix(top_k_sparse(sim.T, int(self.params["k"])).T)
        self._fitted_on(user_items)
        return self
