"""One contract suite for every recommender, after implicit's RecommenderBaseTestMixin.

The checkerboard: even users played even items, odd users odd items, and the diagonal is
withheld, so for user ``u`` the one unseen item liked by every similar user is item ``u``:
it must come back first.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models import ModelError, Recommender, create_recommender, recommender_classes

SIZE = 50

# small, fast, deterministic settings that let each model learn the checkerboard
PARAMS: dict[str, dict] = {
    "pop": {},
    "itemknn": {"k": 50},
    "ease": {"l2": 1.0},
    "tagease": {"l2": 1.0, "tag_weight": 0.5, "min_tag_items": 1},
    "als": {
        "factors": 3,
        "regularization": 0.0,
        "alpha": 1.0,
        "iterations": 15,
        "weighting": "none",
        "num_threads": 1,
    },
    "bpr": {
        "factors": 4,
        "learning_rate": 0.05,
        "regularization": 0.0,
        "iterations": 400,
        "num_threads": 1,
    },
    "lightfm": {"no_components": 8, "epochs": 60, "num_threads": 1},
    "item2vec": {"factors": 8},
    "rp3beta": {"alpha": 1.0, "beta": 0.0},
    "tagknn": {"k": 50},
    "ensemble": {"members": {"ease": {"weight": 1.0, "l2": 1.0}, "tagknn": {"weight": 0.5}}},
}
PERSONALISED = [name for name in PARAMS if name != "pop"]


def checkerboard(size: int = SIZE) -> sp.csr_matrix:
    """Even users liked even items, odd users odd items; the diagonal is withheld."""
    board = np.zeros((size, size), dtype=np.float32)
    for i in range(size):
        board[i, i % 2 :: 2] = 1.0 + (i % 3)  # play counts, not just ones
    board[np.diag_indices(size)] = 0.0
    return sp.csr_matrix(board)


def parity_tags(size: int = SIZE) -> sp.csr_matrix:
    """Two tags ('even', 'odd'): the content signal for models that use item features."""
    return sp.csr_matrix(
        (np.ones(size, np.float32), (np.arange(size), np.arange(size) % 2)), shape=(size, 2)
    )


def _fit(name: str) -> tuple[str, Recommender]:
    model = create_recommender(name, **PARAMS[name])
    return name, model.fit(checkerboard(), item_features=parity_tags())


@pytest.fixture(scope="module", params=list(PARAMS))
def fitted(request: pytest.FixtureRequest) -> tuple[str, Recommender]:
    return _fit(request.param)


@pytest.fixture(scope="module", params=PERSONALISED)
def personal(request: pytest.FixtureRequest) -> tuple[str, Recommender]:
    """Every model that personalises (all but popularity, which has its own test)."""
    return _fit(request.param)


def test_every_registered_model_is_under_contract() -> None:
    assert set(recommender_classes()) == set(PARAMS)


def test_heldout_item_comes_back_first(personal: tuple[str, Recommender]) -> None:
    name, model = personal
    user_items = checkerboard()
    for user in range(SIZE):
        ids, scores = model.recommend(user, user_items[user], N=10)
        assert ids.shape == (10,) and scores.shape == (10,)
        assert ids[0] == user, f"{name}: user {user} got {ids[:5]}"
        assert np.all(np.diff(scores) <= 1e-6), "scores must be sorted best first"


def test_batch_matches_single(fitted: tuple[str, Recommender]) -> None:
    _, model = fitted
    user_items = checkerboard()
    users = np.arange(0, SIZE, 7)
    ids, scores = model.recommend(users, user_items[users], N=5)
    assert ids.shape == (len(users), 5) and scores.shape == (len(users), 5)
    for row, user in enumerate(users):
        one, one_scores = model.recommend(int(user), user_items[user], N=5)
        np.testing.assert_allclose(scores[row], one_scores, rtol=1e-4, atol=1e-5)
        assert set(one[:1]) == set(ids[row][:1]) or np.isclose(one_scores[0], one_scores[1])


def test_full_matrix_is_accepted_as_user_items(fitted: tuple[str, Recommender]) -> None:
    _, model = fitted
    user_items = checkerboard()
    ids_rows, _ = model.recommend(np.array([3, 4]), user_items[[3, 4]], N=5)
    ids_full, _ = model.recommend(np.array([3, 4]), user_items, N=5)
    np.testing.assert_array_equal(ids_rows, ids_full)


def test_liked_items_are_filtered_unless_asked(fitted: tuple[str, Recommender]) -> None:
    _, model = fitted
    user_items = checkerboard()
    liked = set(user_items[2].indices)
    ids, _ = model.recommend(2, user_items[2], N=SIZE)
    assert not liked & set(ids[ids >= 0].tolist())
    # every item is a candidate when nothing is filtered
    ids, _ = model.recommend(2, user_items[2], N=SIZE, filter_already_liked_items=False)
    assert sorted(ids.tolist()) == list(range(SIZE))


def test_filter_items_and_candidate_items(fitted: tuple[str, Recommender]) -> None:
    _, model = fitted
    user_items = checkerboard()
    ids, _ = model.recommend(0, user_items[0], N=5, filter_items=np.array([0]))
    assert 0 not in ids
    ids, _ = model.recommend(0, user_items[0], N=5, items=np.array([1, 3, 5]))
    assert set(ids[ids >= 0].tolist()) <= {1, 3, 5}
    assert (ids == -1).sum() == 2, "fewer candidates than N pad with -1"


def test_similar_items_share_parity(personal: tuple[str, Recommender]) -> None:
    name, model = personal
    for item in range(0, SIZE, 5):
        ids, scores = model.similar_items(item, N=10)
        assert ids[0] == item
        assert len(ids) == 10 and len(scores) == 10
        assert all(i % 2 == item % 2 for i in ids), f"{name}: item {item} -> {ids}"


def test_save_and_load_round_trip(fitted: tuple[str, Recommender], tmp_path) -> None:
    _, model = fitted
    user_items = checkerboard()
    path = model.save(tmp_path / "model.pkl")
    loaded = Recommender.load(path)
    users = np.arange(SIZE)
    before = model.recommend(users, user_items, N=5)
    after = loaded.recommend(users, user_items, N=5)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_allclose(before[1], after[1], rtol=1e-6)


def test_vectors_have_one_row_per_item_and_user(fitted: tuple[str, Recommender]) -> None:
    name, model = fitted
    if model.item_factors is not None:
        assert model.item_factors.shape[0] == SIZE
    if model.user_factors is not None:
        assert model.user_factors.shape[0] == SIZE
    factor_models = {"als", "bpr", "lightfm", "item2vec"}
    assert (model.item_factors is not None) == (name in factor_models)


def test_popularity_ranks_by_listeners() -> None:
    user_items = sp.csr_matrix(
        np.array([[1, 0, 5, 0], [1, 1, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0]], np.float32)
    )
    model = create_recommender("pop").fit(user_items)
    ids, scores = model.recommend(0, user_items[0], N=2)
    assert ids.tolist() == [1, 3] and scores.tolist() == [3.0, 0.0]


def test_unfitted_and_bad_input_fail_clearly() -> None:
    model = create_recommender("als")
    with pytest.raises(ModelError, match="not fitted"):
        model.recommend(0, checkerboard()[0])
    with pytest.raises(ModelError, match="CSR"):
        create_recommender("pop").fit(np.ones((3, 3)))
    with pytest.raises(ModelError, match="unknown recommender"):
        create_recommender("nope")
    with pytest.raises(ModelError, match="needs item_features"):
        create_recommender("tagknn").fit(checkerboard())


def test_weighting_belongs_to_the_model() -> None:
    """The same raw counts give different ALS models under different weightings."""
    board = checkerboard()
    log = create_recommender("als", factors=3, weighting="log", num_threads=1).fit(board)
    bm25 = create_recommender("als", factors=3, weighting="bm25", num_threads=1).fit(board)
    assert not np.allclose(log.item_factors, bm25.item_factors)
