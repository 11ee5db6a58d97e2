"""LightFM WARP hybrid (Kula 2015): an artist is the sum of its id and tag embeddings.

Tags let the model place artists nobody has played yet (cold start): their vector comes
from their tags alone, learned from the artists that share them.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from models.base import Recommender, check_csr, normalize_rows, weight


def item_feature_matrix(
    n_items: int, item_features: sp.csr_matrix | None, tag_weight: float = 1.0
) -> sp.csr_matrix:
    """``[identity | tags]``, rows L1-normalised as LightFM recommends."""
    identity = sp.identity(n_items, dtype=np.float32, format="csr")
    if item_features is None:
        return identity
    tags = check_csr(item_features, "item_features")
    tags.data = np.log1p(tags.data) * tag_weight
    return normalize_rows(sp.hstack([identity, tags]).tocsr(), "l1")


class LightFMRecommender(Recommender):
    """LightFM with WARP loss on binary interactions, artist tags as item features.

    Args:
        no_components: vector size.
        learning_rate, item_alpha, user_alpha: SGD step and L2 penalties.
        epochs: passes over the interactions.
        max_sampled: WARP's negative samples per positive.
        tag_weight: weight of the tag features against the artist id feature.
        use_features: False trains pure collaborative LightFM (ids only).
    """

    name = "lightfm"
    uses_item_features = True

    def __init__(
        self,
        no_components: int = 64,
        learning_rate: float = 0.05,
        item_alpha: float = 1e-6,
        user_alpha: float = 1e-6,
        epochs: int = 30,
        max_sampled: int = 30,
        tag_weight: float = 1.0,
        use_features: bool = True,
        weighting: str = "binary",
        seed: int = 0,
        num_threads: int = 2,
    ) -> None:
        super().__init__(
            no_components=no_components,
            learning_rate=learning_rate,
            item_alpha=item_alpha,
            user_alpha=user_alpha,
            epochs=epochs,
            max_sampled=max_sampled,
            tag_weight=tag_weight,
            use_features=use_features,
            weighting=weighting,
            seed=seed,
            num_threads=num_threads,
        )
        self.model = None
        self._item_bias = np.zeros(0, np.float32)
        self._item_vectors = np.zeros((0, 0), np.float32)
        self._user_vectors = np.zeros((0, 0), np.float32)

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> Self:
        from lightfm import LightFM

        p = self.params
        csr = check_csr(user_items)
        features = item_feature_matrix(
            csr.shape[1], item_features if p["use_features"] else None, float(p["tag_weight"])
        )
        self.model = LightFM(
            no_components=int(p["no_components"]),
            learning_rate=float(p["learning_rate"]),
            item_alpha=float(p["item_alpha"]),
            user_alpha=float(p["user_alpha"]),
            loss="warp",
            max_sampled=int(p["max_sampled"]),
            random_state=int(p["seed"]),
        )
        self.model.fit(
            weight(csr, p["weighting"]).tocoo(),
            item_features=features,
            epochs=int(p["epochs"]),
            num_threads=int(p["num_threads"]),
            verbose=show_progress,
        )
        self._item_bias, self._item_vectors = self.model.get_item_representations(features)
        _, self._user_vectors = self.model.get_user_representations()
        self._fitted_on(user_items)
        return self

    @property
    def item_factors(self) -> np.ndarray | None:
        return self._item_vectors if self.fitted else None

    @property
    def user_factors(self) -> np.ndarray | None:
        return self._user_vectors if self.fitted else None

    def score(self, userids: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return self._user_vectors[userids] @ self._item_vectors.T + self._item_bias
