"""Train/test splits of a users x items matrix.

- :func:`holdout_split`: per-user random holdout (HetRec has no listening timestamps).
- :func:`kfold_splits`: per-user k-fold, every interaction tested exactly once.
- :func:`time_split`: a global time cut over events (the lake's play events).
- :func:`cold_item_split`: whole items held out, for cold-start evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from encore.errors import DatasetError
from models.interactions import Events


def _check(user_items: sp.spmatrix) -> sp.csr_matrix:
    if not sp.issparse(user_items):
        raise DatasetError(
            f"splits expect a scipy sparse users x items matrix, got {type(user_items).__name__}"
        )
    csr = sp.csr_matrix(user_items, dtype=np.float32)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    return csr


def _assign(
    user_items: sp.csr_matrix, test_mask: np.ndarray
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    coo = user_items.tocoo()
    shape = user_items.shape
    train = sp.csr_matrix(
        (coo.data[~test_mask], (coo.row[~test_mask], coo.col[~test_mask])), shape=shape
    )
    test = sp.csr_matrix(
        (coo.data[test_mask], (coo.row[test_mask], coo.col[test_mask])), shape=shape
    )
    return train, test


def holdout_split(
    user_items: sp.spmatrix, test_fraction: float = 0.1, seed: int = 0, min_items: int = 2
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out ``round(test_fraction * n)`` (at least one) random items of every user.

    Users with fewer than ``min_items`` items stay wholly in train, so every test user
    keeps some history. Returns ``(train, test)`` with the original values (play counts).
    """
    if not 0 < test_fraction < 1:
        raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction}")
    csr = _check(user_items)
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(csr.nnz, dtype=bool)
    counts = np.diff(csr.indptr)
    for user in np.flatnonzero(counts >= min_items):
        n = counts[user]
        take = min(max(1, round(test_fraction * n)), n - 1)
        start = csr.indptr[user]
        test_mask[start + rng.choice(n, take, replace=False)] = True
    return _assign(csr, test_mask)


def kfold_splits(
    user_items: sp.spmatrix, folds: int = 10, seed: int = 0
) -> Iterator[tuple[sp.csr_matrix, sp.csr_matrix]]:
    """Per-user k-fold: each user's items are shuffled and dealt round-robin to folds."""
    if folds < 2:
        raise DatasetError(f"k-fold needs at least 2 folds, got {folds}")
    csr = _check(user_items)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(csr.nnz, dtype=np.int64)
    for user in range(csr.shape[0]):
        start, end = csr.indptr[user], csr.indptr[user + 1]
        # a random offset so fold 0 is not always the biggest for small users
        fold_of[start:end] = (rng.permutation(end - start) + rng.integers(folds)) % folds
    for fold in range(folds):
        yield _assign(csr, fold_of == fold)


def time_split(
    events: Events, shape: tuple[int, int], test_fraction: float = 0.2
) -> tuple[sp.csr_matrix, sp.csr_matrix, float]:
    """Split events at the time quantile ``1 - test_fraction``.

    Train counts the plays before the cut; test holds the (user, item) pairs played after
    it that the user had not played before (re-listening is not a discovery to predict).

    Returns:
        ``(train, test, cut)`` with ``cut`` in seconds since the epoch.
    """
    if len(events.timestamp) == 0:
        raise DatasetError("time_split got no events")
    cut = float(np.quantile(events.timestamp, 1 - test_fraction))
    before = events.timestamp < cut
    ones = np.ones(int(before.sum()), np.float32)
    train = sp.csr_matrix(
        (ones, (events.user_index[before], events.item_index[before])), shape=shape
    )
    train.sum_duplicates()
    after = ~before
    test = sp.csr_matrix(
        (
            np.ones(int(after.sum()), np.float32),
            (events.user_index[after], events.item_index[after]),
        ),
        shape=shape,
    )
    test.sum_duplicates()
    test = test - test.multiply(train > 0)
    test.eliminate_zeros()
    test.data[:] = 1.0
    return train, sp.csr_matrix(test), cut


def cold_item_split(
    user_items: sp.spmatrix, item_fraction: float = 0.1, seed: int = 0
) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Hold out a random ``item_fraction`` of the items entirely.

    Returns:
        ``(train, test, cold_items)``: train has no interaction with a cold item; test
        holds exactly the interactions with cold items.
    """
    csr = _check(user_items)
    rng = np.random.default_rng(seed)
    played = np.flatnonzero(np.diff(csr.tocsc().indptr) > 0)
    cold = np.sort(rng.choice(played, max(1, round(item_fraction * len(played))), replace=False))
    is_cold = np.zeros(csr.shape[1], dtype=bool)
    is_cold[cold] = True
    train, test = _assign(csr, is_cold[csr.indices])
    return train, test, cold
