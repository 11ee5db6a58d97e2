"""The one recommender interface, after implicit's ``RecommenderBase``.

Every model takes the same input, a users x items CSR matrix of raw play counts, and
turns it into whatever it learns from (log, BM25, binary, confidence alpha) through its
own parameters, so one matrix feeds every model. Shapes follow implicit: ``recommend``
takes one user id or an array of ids with the matching rows of ``user_items`` and returns
``(ids, scores)``, 1-d for one user and 2-d for many.

Edge cases answer the same way for every model (implemented once, in
:meth:`Recommender.recommend`):

- **Unknown user**: a user id outside ``[0, n_users)`` of the fitted matrix raises
  :class:`UnknownUserError` (an :class:`encore.errors.NotFoundError`) naming the user and
  the matrix size. A listener who arrived after the fit is not a row of the model: refit,
  or serve them the popularity fallback below with an empty history.
- **Empty history**: a user whose row in ``user_items`` has no items gets the model's
  fallback, the items ranked by how many users played them in the fitted matrix, with
  those counts as scores, minus the filtered items. No model personalises
  from nothing, and some would otherwise return arbitrary or random items.
- **N larger than the catalogue**: no error; the arrays have ``min(N, n_items)`` columns
  and, where filters leave fewer candidates, pad with id -1 and score -inf. ``N < 1``
  raises :class:`ModelError`.
- **Unknown item** in :meth:`Recommender.similar_items`: :class:`UnknownItemError`.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from encore.errors import EncoreError, NotFoundError

WEIGHTINGS = ("none", "binary", "log", "bm25", "tfidf")


class ModelError(EncoreError):
    """A recommender was misused: unfitted, wrong input type, unknown parameter."""


class UnknownUserError(NotFoundError):
    """A user id is not a row of the matrix the model was fitted on."""


class UnknownItemError(NotFoundError):
    """An item id is not a column of the matrix the model was fitted on."""


def check_csr(user_items: Any, what: str = "user_items") -> sp.csr_matrix:
    """The input as float32 CSR, or a clear error (implicit's message, our type)."""
    if not sp.issparse(user_items):
        raise ModelError(
            f"{what}: method expects a scipy CSR matrix, and was passed "
            f"{type(user_items).__name__} instead"
        )
    csr = sp.csr_matrix(user_items, dtype=np.float32)
    csr.sort_indices()
    return csr


def weight(
    user_items: sp.csr_matrix,
    scheme: str = "none",
    K1: float = 100.0,
    B: float = 0.8,
) -> sp.csr_matrix:
    """Re-weight raw play counts: ``none``, ``binary``, ``log`` (log1p), ``bm25``, ``tfidf``.

    BM25 and TF-IDF treat each item as a document whose terms are its listeners, as in
    implicit's last.fm example, so heavy listeners and very popular artists are damped.
    """
    csr = check_csr(user_items)
    if scheme == "none":
        return csr
    if scheme == "binary":
        out = csr.copy()
        out.data[:] = 1.0
        return out
    if scheme == "log":
        out = csr.copy()
        out.data = np.log1p(out.data)
        return out
    if scheme in ("bm25", "tfidf"):
        from implicit.nearest_neighbours import bm25_weight, tfidf_weight

        item_users = csr.T.tocsr()
        weighted = (
            bm25_weight(item_users, K1=K1, B=B) if scheme == "bm25" else tfidf_weight(item_users)
        )
        return sp.csr_matrix(weighted.T, dtype=np.float32)
    raise ModelError(f"unknown weighting {scheme!r}; expected one of {', '.join(WEIGHTINGS)}")


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``n`` of a 2-d score array, best first; -inf entries become id -1."""
    n = min(n, scores.shape[1])
    part = (
        np.argpartition(-scores, n - 1, axis=1)[:, :n]
        if n < scores.shape[1]
        else (np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1)))
    )
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1)
    best = np.take_along_axis(part_scores, order, axis=1)
    ids[np.isneginf(best) | np.isnan(best)] = -1
    return ids, best


class Recommender(ABC):
    """Base of every Encore recommender.

    Subclasses implement :meth:`fit` and :meth:`score` (dense scores of all items for some
    users); filtering, top-N and batching live here, once.
    """

    name: ClassVar[str] = "base"
    uses_item_features: ClassVar[bool] = False
    # class-level defaults keep models pickled before these existed loadable: an unknown
    # user count skips the user check, no popularity skips the empty-history fallback
    n_users: int = -1
    fallback_popularity: np.ndarray | None = None

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = params
        self.n_items: int = 0
        self.fitted = False

    # --- what a model implements -------------------------------------------------------
    @abstractmethod
    def fit(
        self,
        user_items: sp.csr_matrix,
        item_features: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> Self:
        """Learn from a users x items CSR matrix of raw play counts."""

    @abstractmethod
    def score(self, userids: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        """Dense ``(len(userids), n_items)`` scores; ``user_items`` rows match ``userids``."""

    # --- vectors ------------------------------------------------------------------------
    @property
    def item_factors(self) -> np.ndarray | None:
        """Item vectors (``n_items x d``) when the model has them, else None."""
        return None

    @property
    def user_factors(self) -> np.ndarray | None:
        """User vectors (``n_users x d``) when the model has them, else None."""
        return None

    def item_similarity(self, itemid: int) -> np.ndarray:
        """Similarity of ``itemid`` to every item (default: cosine of item vectors)."""
        factors = self.item_factors
        if factors is None:
            raise ModelError(f"{self.name} has neither item vectors nor an item similarity")
        norms = np.linalg.norm(factors, axis=1)
        norms[norms == 0] = 1.0
        return (factors @ factors[itemid]) / (norms * norms[itemid])

    # --- the shared API -----------------------------------------------------------------
    def _fitted_on(self, user_items: sp.spmatrix) -> None:
        """Record what every model needs after a fit: the matrix size and the fallback."""
        csr = check_csr(user_items)
        self.n_users, self.n_items = (int(n) for n in csr.shape)
        self.fallback_popularity = np.bincount(csr.indices, minlength=self.n_items).astype(
            np.float32
        )
        self.fitted = True

    def _check_users(self, userids: np.ndarray) -> None:
        if self.n_users < 0 or len(userids) == 0:
            return
        bad = userids[(userids < 0) | (userids >= self.n_users)]
        if len(bad):
            raise UnknownUserError(
                f"{self.name}: user id {int(bad[0])} is not in the fitted matrix "
                f"({self.n_users} users x {self.n_items} items); expected 0..{self.n_users - 1}"
            )

    def _check_items(self, itemids: np.ndarray) -> None:
        bad = itemids[(itemids < 0) | (itemids >= self.n_items)]
        if len(bad):
            raise UnknownItemError(
                f"{self.name}: item id {int(bad[0])} is not in the fitted matrix "
                f"({self.n_items} items); expected 0..{self.n_items - 1}"
            )

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise ModelError(f"{self.name} is not fitted; call fit(user_items) first")

    def recommend(
        self,
        userid: int | np.ndarray,
        user_items: sp.csr_matrix,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items: np.ndarray | None = None,
        items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``N`` items for one user id or an array of ids.

        Args:
            userid: one id, or an array of ids.
            user_items: the users' rows (one row per id, in order); the full training
                matrix is accepted too and its rows are taken.
            N: how many items.
            filter_already_liked_items: drop the items in ``user_items`` from the output.
            filter_items: item ids never to return.
            items: rank only these item ids (e.g. cold-start candidates).

        Returns:
            ``(ids, scores)``: shape ``(min(N, n_items),)`` for one id,
            ``(len(userid), min(N, n_items))`` for many; fewer candidates than that pad
            with id -1 and score -inf. A user with an empty row gets the popularity
            fallback (see the module docstring).

        Raises:
            UnknownUserError: a user id is not a row of the fitted matrix.
            ModelError: unfitted model, ``N < 1``, or ``user_items`` of the wrong shape.
        """
        self._require_fitted()
        if int(N) < 1:
            raise ModelError(f"{self.name}: N must be at least 1; got {N}")
        single = np.isscalar(userid)
        userids = np.atleast_1d(np.asarray(userid, dtype=np.int64))
        self._check_users(userids)
        rows = check_csr(user_items)
        if rows.shape[0] != len(userids):
            if rows.shape[0] > int(userids.max()):
                rows = rows[userids]
            else:
                raise ModelError(
                    f"user_items has {rows.shape[0]} rows; expected one per user id "
                    f"({len(userids)}) or the full matrix"
                )
        if rows.shape[1] != self.n_items:
            raise ModelError(
                f"user_items has {rows.shape[1]} items; the model was fitted on {self.n_items}"
            )
        scores = np.asarray(self.score(userids, rows), dtype=np.float32)
        empty = np.diff(rows.indptr) == 0
        if empty.any() and self.fallback_popularity is not None:
            scores[empty] = self.fallback_popularity
        if filter_already_liked_items:
            r, c = rows.nonzero()
            scores[r, c] = -np.inf
        if filter_items is not None:
            scores[:, np.asarray(filter_items)] = -np.inf
        if items is not None:
            keep = np.zeros(self.n_items, dtype=bool)
            keep[np.asarray(items)] = True
            scores[:, ~keep] = -np.inf
        ids, best = top_n(scores, int(N))
        return (ids[0], best[0]) if single else (ids, best)

    def similar_items(self, itemid: int | np.ndarray, N: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``N`` items most similar to ``itemid`` (the item itself first).

        ``N`` larger than the catalogue returns every item; an id outside the fitted
        matrix raises :class:`UnknownItemError`.
        """
        self._require_fitted()
        if int(N) < 1:
            raise ModelError(f"{self.name}: N must be at least 1; got {N}")
        single = np.isscalar(itemid)
        itemids = np.atleast_1d(np.asarray(itemid, dtype=np.int64))
        self._check_items(itemids)
        scores = np.vstack([self.item_similarity(int(i)) for i in itemids]).astype(np.float32)
        # the item is most similar to itself, as in implicit
        scores[np.arange(len(itemids)), itemids] = np.inf
        ids, best = top_n(scores, int(N))
        best[:, 0] = np.where(ids[:, 0] == itemids, 1.0, best[:, 0])
        return (ids[0], best[0]) if single else (ids, best)

    # --- persistence --------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Pickle the fitted model to ``path`` (a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            pickle.dump(self, handle, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved with :meth:`save`."""
        with Path(path).open("rb") as handle:
            model = pickle.load(handle)
        if not isinstance(model, Recommender):
            raise ModelError(f"{path} holds a {type(model).__name__}, not a Recommender")
        return model

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{type(self).__name__}({params})"


def top_k_sparse(similarity: sp.spmatrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row of a sparse matrix."""
    csr = sp.csr_matrix(similarity, dtype=np.float32)
    rows, cols, vals = [], [], []
    for row in range(csr.shape[0]):
        start, end = csr.indptr[row], csr.indptr[row + 1]
        if end == start:
            continue
        data = csr.data[start:end]
        keep = np.argpartition(-data, k - 1)[:k] if end - start > k else np.arange(end - start)
        rows.append(np.full(len(keep), row))
        cols.append(csr.indices[start:end][keep])
        vals.append(data[keep])
    if not rows:
        return sp.csr_matrix(csr.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=csr.shape
    )


def normalize_rows(matrix: sp.spmatrix, norm: str = "l2") -> sp.csr_matrix:
    """Scale each row of a sparse matrix to unit ``l1`` or ``l2`` norm (empty rows stay 0)."""
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    if norm == "l1":
        sizes = np.asarray(abs(csr).sum(axis=1)).ravel()
    else:
        sizes = np.sqrt(np.asarray(csr.multiply(csr).sum(axis=1)).ravel())
    sizes[sizes == 0] = 1.0
    return sp.csr_matrix(sp.diags((1.0 / sizes).astype(np.float32)) @ csr)
