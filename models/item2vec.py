"""item2vec: artist embeddings learned from listening sequences.

Skip-gram with negative sampling (the word2vec objective item2vec uses) implicitly
factorises the shifted positive PMI matrix of (item, context) co-occurrences (Levy and
Goldberg 2014). This model computes that matrix from the sequences directly and
factorises it with a truncated SVD: same objective family, deterministic, and seconds on a
CPU instead of SGD epochs. A user is the weighted mean of the artists they played.

Sequences: each user's items ordered by play count (HetRec has no timestamps), or the
listening order when given. ``window=0`` uses the whole sequence as context, as the
item2vec paper does for sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from models.base import ModelError, Recommender, check_csr, normalize_rows, weight


def sequences_from_counts(user_items: sp.csr_matrix) -> list[np.ndarray]:
    """Each user's items, most played first (ties by item id)."""
    out = []
    for user in range(user_items.shape[0]):
        start, end = user_items.indptr[user], user_items.indptr[user + 1]
        items = user_items.indices[start:end]
        order = np.lexsort((items, -user_items.data[start:end]))
        out.append(items[order])
    return out


def cooccurrence(sequences: Sequence[np.ndarray], n_items: int, window: int) -> sp.csr_matrix:
    """Symmetric item x item counts of pairs at most ``window`` apart (0: whole sequence)."""
    rows, cols = [], []
    for seq in sequences:
        n = len(seq)
        if n < 2:
            continue
        reach = n - 1 if window <= 0 else min(window, n - 1)
        for offset in range(1, reach + 1):
            rows.append(seq[:-offset])
            cols.append(seq[offset:])
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    r, c = np.concatenate(rows), np.concatenate(cols)
    counts = sp.csr_matrix(
        (np.ones(len(r) * 2, np.float32), (np.concatenate([r, c]), np.concatenate([c, r]))),
        shape=(n_items, n_items),
    )
    counts.sum_duplicates()
    return counts


class Item2VecRecommender(Recommender):
    """SPPMI-SVD item embeddings (the SGNS objective, solved in closed form).

    Args:
        factors: embedding size.
        window: context half-width in a sequence; 0 means the whole sequence.
        negative: the SGNS negative-sample count ``k``, a shift of ``log k`` on PMI.
        cds: context-distribution smoothing exponent (word2vec's 0.75).
        weighting: how play counts weight the user's mean vector.
    """

    name = "item2vec"

    def __init__(
        self,
        factors: int = 64,
        window: int = 0,
        negative: float = 1.0,
        cds: float = 0.75,
        weighting: str = "log",
        seed: int = 0,
    ) -> None:
        super().__init__(
            factors=factors,
            window=window,
            negative=negative,
            cds=cds,
            weighting=weighting,
            seed=seed,
        )
        self.vectors = np.zeros((0, 0), np.float32)

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
        sequences: Sequence[np.ndarray] | None = None,
    ) -> Self:
        p = self.params
        csr = check_csr(user_items)
        n_items = csr.shape[1]
        factors = int(p["factors"])
        if factors >= n_items:
            raise ModelError(f"item2vec factors ({factors}) must be below the items ({n_items})")
        counts = cooccurrence(
            sequences if sequences is not None else sequences_from_counts(csr),
            n_items,
            int(p["window"]),
        ).tocoo()
        total = counts.data.sum()
        item_count = np.asarray(counts.sum(axis=1)).ravel()
        context = item_count ** float(p["cds"])
        context /= context.sum()
        pmi = np.log(counts.data * 1.0 / total) - np.log(item_count[counts.row] / total)
        pmi -= np.log(context[counts.col]) + np.log(float(p["negative"]))
        keep = pmi > 0
        sppmi = sp.csr_matrix(
            (pmi[keep].astype(np.float32), (counts.row[keep], counts.col[keep])),
            shape=(n_items, n_items),
        )
        rng = np.random.default_rng(int(p["seed"]))
        v0 = rng.standard_normal(n_items).astype(np.float32)
        u, s, _ = svds(sppmi.astype(np.float64), k=factors, v0=v0)
        self.vectors = (u * np.sqrt(s)).astype(np.float32)
        self._fitted_on(user_items)
        return self

    @property
    def item_factors(self) -> np.ndarray | None:
        return self.vectors if self.fitted else None

    def score(self, userids: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        users = normalize_rows(weight(user_items, self.params["weighting"]), "l1") @ self.vectors
        return users @ self.vectors.T
