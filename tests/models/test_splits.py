"""Splits: disjoint, complete, reproducible, and shaped as promised."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from encore.errors import DatasetError
from models.datasets import fingerprint
from models.splits import cold_item_split, holdout_split, kfold_splits, time_split
from models.synthetic import generate


@pytest.fixture(scope="module")
def data():
    return generate(users=200, items=300, seed=3)


def test_holdout_is_a_disjoint_partition_with_ten_percent_per_user(data) -> None:
    x = data.user_items
    train, test = holdout_split(x, 0.1, seed=1)
    assert (train.multiply(test)).nnz == 0
    assert abs(train + test - x).sum() == 0
    per_user = np.diff(x.indptr)
    held = np.diff(test.indptr)
    expected = np.minimum(np.maximum(1, np.round(0.1 * per_user)), per_user - 1)
    np.testing.assert_array_equal(held, np.where(per_user >= 2, expected, 0))
    assert np.all(np.diff(train.indptr) >= 1), "every user keeps history"


def test_holdout_is_reproducible_and_seeded(data) -> None:
    a = holdout_split(data.user_items, 0.1, seed=1)[1]
    b = holdout_split(data.user_items, 0.1, seed=1)[1]
    c = holdout_split(data.user_items, 0.1, seed=2)[1]
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(c)


def test_holdout_rejects_bad_fraction(data) -> None:
    with pytest.raises(DatasetError, match="test_fraction"):
        holdout_split(data.user_items, 1.5)


def test_kfold_tests_every_interaction_exactly_once(data) -> None:
    x = data.user_items
    tested = sp.csr_matrix(x.shape, dtype=np.float32)
    folds = list(kfold_splits(x, folds=5, seed=0))
    assert len(folds) == 5
    for train, test in folds:
        assert train.multiply(test).nnz == 0
        assert abs(train + test - x).sum() == 0
        tested = tested + (test > 0).astype(np.float32)
    assert tested.nnz == x.nnz and tested.max() == 1


def test_time_split_trains_on_the_past_and_tests_new_pairs(data) -> None:
    train, test, cut = time_split(data.events, data.shape, test_fraction=0.2)
    events = data.events
    before = events.timestamp < cut
    assert train.sum() == before.sum(), "train counts every play before the cut"
    assert train.multiply(test).nnz == 0, "re-listens are not test items"
    coo = test.tocoo()
    after_pairs = set(zip(events.user_index[~before], events.item_index[~before], strict=True))
    train_pairs = set(zip(*train.nonzero(), strict=True))
    # exactly the pairs first played after the cut, each once, relevance 1
    assert set(zip(coo.row, coo.col, strict=True)) == after_pairs - train_pairs
    assert test.nnz == len(after_pairs - train_pairs) and set(test.data) == {1.0}


def test_cold_item_split_removes_items_entirely(data) -> None:
    train, test, cold = cold_item_split(data.user_items, 0.1, seed=0)
    assert train[:, cold].nnz == 0
    assert set(np.unique(test.indices)) <= set(cold.tolist())
    assert abs(train + test - data.user_items).sum() == 0
