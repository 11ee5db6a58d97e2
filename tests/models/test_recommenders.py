"""One contract suite for every recommender, after implicit's RecommenderBaseTestMixin.

The checkerboard: even users played even items, odd users odd items, and the diagonal is
withheld, so for user ``u`` the one unseen item liked by every similar user is item ``u``:
it must come back first. Its tags equal the answer, so it proves the plumbing, not the
learning: every model also runs on realistic synthetic data (Zipf popularity, latent
genre tastes, noisy tags, a random holdout) and must beat popularity there.

Every fit is deterministic: fixed seeds, one solver thread (BPR's and LightFM's SGD are
Hogwild with more threads), and ALS pins BLAS to one thread in ``models/als.py`` itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models import ModelError, Recommender, create_recommender, recommender_classes
from models.base import UnknownItemError, UnknownUserError
from models.evaluation import evaluate
from models.splits import holdout_split
from models.synthetic import generate

SIZE = 50

# small, fast, deterministic settings that let each model learn the checkerboard
PARAMS: dict[str, dict] = {
    "pop": {},
    "itemknn": {"k": 50},
    "ease": {"l2": 1.0},
    "tagease": {"l2": 1.0, "tag_weight": 0.5, "min_tag_items": 1},
    # regularization 0 with 3 factors is ill-posed here: 1 seed in 16 put a wrong item
    # first (the CI flake, user 0 got item 45); 0.01 passes all 16 with a margin >= 0.8
    "als": {
        "factors": 3,
        "regularization": 0.01,
        "alpha": 1.0,
        "iterations": 15,
        "weighting": "none",
        "seed": 0,
        "num_threads": 1,
    },
    "bpr": {
        "factors": 4,
        "learning_rate": 0.05,
        "regularization": 0.0,
        "iterations": 400,
        "seed": 0,
        "num_threads": 1,
    },
    "lightfm": {"no_components": 8, "epochs": 60, "seed": 0, "num_threads": 1},
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
    assert set(recommender_classes()) == set(PARAMS) == set(REALISTIC)


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


def test_als_pins_blas_so_implicit_does_not_warn() -> None:
    """implicit warns when OpenBLAS runs a thread pool; the library path pins it itself."""
    import warnings

    from threadpoolctl import threadpool_info, threadpool_limits

    if not any(api.get("internal_api") == "openblas" for api in threadpool_info()):
        pytest.skip("implicit only checks OpenBLAS and MKL thread pools; neither is loaded")
    with threadpool_limits(2, "blas"), warnings.catch_warnings():
        warnings.simplefilter("error")
        create_recommender("als", **PARAMS["als"]).fit(checkerboard())


def test_weighting_belongs_to_the_model() -> None:
    """The same raw counts give different ALS models under different weightings."""
    board = checkerboard()
    log = create_recommender("als", factors=3, weighting="log", num_threads=1).fit(board)
    bm25 = create_recommender("als", factors=3, weighting="bm25", num_threads=1).fit(board)
    assert not np.allclose(log.item_factors, bm25.item_factors)


# --- edge cases: the same answer from every model (see models/base.py) ------------------
def test_unknown_user_is_a_clear_domain_error(fitted: tuple[str, Recommender]) -> None:
    _, model = fitted
    board = checkerboard()
    for user in (SIZE, SIZE + 100, -1):
        with pytest.raises(UnknownUserError, match=rf"user id {user} .*\({SIZE} users x "):
            model.recommend(user, board[0])
    # one unknown id in a batch fails the batch, before any scoring
    with pytest.raises(UnknownUserError, match=f"user id {SIZE} "):
        model.recommend(np.array([0, SIZE]), board[[0, 1]])


def test_n_beyond_the_catalogue_returns_the_catalogue(fitted: tuple[str, Recommender]) -> None:
    name, model = fitted
    board = checkerboard()
    liked = set(board[2].indices.tolist())
    ids, scores = model.recommend(2, board[2], N=3 * SIZE)
    assert ids.shape == (SIZE,) and scores.shape == (SIZE,)
    real = ids[ids >= 0].tolist()
    assert len(real) == len(set(real)) == SIZE - len(liked), name
    assert set(real) == set(range(SIZE)) - liked
    assert np.all(np.isneginf(scores[ids < 0]))
    batch, _ = model.recommend(np.array([1, 2]), board[[1, 2]], N=3 * SIZE)
    assert batch.shape == (2, SIZE)
    similar, _ = model.similar_items(4, N=3 * SIZE)
    assert similar.shape == (SIZE,) and similar[0] == 4
    with pytest.raises(ModelError, match="N must be at least 1"):
        model.recommend(2, board[2], N=0)


def test_unknown_item_is_a_clear_domain_error(fitted: tuple[str, Recommender]) -> None:
    _, model = fitted
    with pytest.raises(UnknownItemError, match=rf"item id {SIZE} .*\({SIZE} items\)"):
        model.similar_items(SIZE)


@pytest.mark.parametrize("name", list(PARAMS))
def test_empty_history_gets_the_popularity_fallback(name: str) -> None:
    # user u played items 0..u, so item i has SIZE - i listeners: an unambiguous order
    staircase = sp.csr_matrix(np.tril(np.ones((SIZE, SIZE), np.float32)))
    model = create_recommender(name, **PARAMS[name]).fit(staircase, item_features=parity_tags())
    empty = sp.csr_matrix((1, SIZE), dtype=np.float32)
    for user in (0, SIZE - 1):
        ids, scores = model.recommend(user, empty, N=5)
        assert ids.tolist() == [0, 1, 2, 3, 4], f"{name}: {ids}"
        assert scores.tolist() == [SIZE, SIZE - 1, SIZE - 2, SIZE - 3, SIZE - 4]
    ids, _ = model.recommend(0, empty, N=3, filter_items=np.array([0, 2]))
    assert ids.tolist() == [1, 3, 4]
    # a batch mixing an empty row and a history: only the empty row falls back
    rows = sp.vstack([empty, staircase[SIZE - 2]]).tocsr()
    batch, _ = model.recommend(np.array([3, SIZE - 2]), rows, N=1)
    assert batch[0].tolist() == [0] and batch[1].tolist() == [SIZE - 1]


# --- realistic data: skewed popularity, latent tastes, noisy tags ------------------------
# Chosen by running seeds 0-5 of the data (and 0-5 of each model) locally: every model
# below except the popularity-blind two scored >= 1.73x popularity's NDCG@10 on every seed
# (BPR lowest, 1.73-1.93x; EASE, LightFM, ensemble ~2.2-2.4x). 1.5x means something and
# holds with room to spare.
MIN_GAIN_OVER_POPULARITY = 1.5
REALISTIC: dict[str, dict] = {
    "pop": {},
    "itemknn": {"k": 100},
    "ease": {"l2": 200.0},
    "tagease": {"l2": 200.0, "tag_weight": 1.0},
    "als": {"factors": 32, "iterations": 10, "seed": 0, "num_threads": 1},
    # BPR overfits fast at a larger step (0.05: 0.5x popularity), hence 0.01
    "bpr": {
        "factors": 32,
        "learning_rate": 0.01,
        "regularization": 0.01,
        "iterations": 80,
        "seed": 0,
        "num_threads": 1,
    },
    "lightfm": {"no_components": 32, "epochs": 15, "seed": 0, "num_threads": 1},
    "item2vec": {"factors": 64},
    "rp3beta": {"alpha": 1.0, "beta": 0.5},
    "tagknn": {"k": 100},
    "ensemble": {"members": {"ease": {"weight": 1.0, "l2": 200.0}, "tagknn": {"weight": 0.3}}},
}
POPULARITY_BLIND = {
    "tagknn": "content only: ranks an artist's tag neighbours with no notion of how many "
    "people play them; the held-out plays are Zipf-popular, so ~0.3-0.4x popularity",
    "item2vec": "SPPMI divides popularity out by construction (PMI); it finds the right "
    "genre (99% of its picks) but the obscure artists in it, ~0.2x popularity",
}


@pytest.fixture(scope="module", params=[0, 1], ids=lambda seed: f"data{seed}")
def realistic(request: pytest.FixtureRequest):
    """1500 listeners x 1500 artists, 20 latent genres, 200 noisy tags; 20% held out."""
    seed = request.param
    data = generate(users=1500, items=1500, genres=20, tags=200, seed=seed)
    train, test = holdout_split(data.user_items, 0.2, seed=seed)
    genre = np.asarray([int(name.rsplit("-g", 1)[1]) for name in data.item_names])
    fitted: dict[str, Recommender] = {}

    def fit(name: str) -> Recommender:
        if name not in fitted:
            model = create_recommender(name, **REALISTIC[name])
            fitted[name] = model.fit(train, item_features=data.item_features)
        return fitted[name]

    return train, test, genre, fit


def _gain_case(name: str):
    if name in POPULARITY_BLIND:
        reason = f"cannot beat popularity on Zipf data: {POPULARITY_BLIND[name]}"
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    return name


@pytest.mark.parametrize("name", [_gain_case(n) for n in REALISTIC if n != "pop"])
def test_beats_popularity_on_realistic_data(realistic, name: str) -> None:
    train, test, _, fit = realistic
    pop = evaluate(fit("pop"), train, test, k=10)["ndcg@10"]
    ours = evaluate(fit(name), train, test, k=10)["ndcg@10"]
    assert ours >= MIN_GAIN_OVER_POPULARITY * pop, (
        f"{name}: ndcg@10 {ours:.4f} vs popularity {pop:.4f} ({ours / pop:.2f}x)"
    )


@pytest.mark.parametrize("name", [n for n in REALISTIC if n != "pop"])
def test_recommendations_follow_the_listeners_tastes(realistic, name: str) -> None:
    """Every personalised model, the popularity-blind ones included, picks artists of the
    (latent) genres a listener already plays far more often than the most-popular list."""
    train, _, genre, fit = realistic
    users = np.arange(0, train.shape[0], 5)

    def in_taste(model: Recommender) -> float:
        ids, _ = model.recommend(users, train[users], N=10)
        shares = []
        for row, user in enumerate(users):
            played = np.zeros(genre.max() + 1, bool)
            played[genre[train[user].indices]] = True
            shares.append(played[genre[ids[row]]].mean())
        return float(np.mean(shares))

    pop, ours = in_taste(fit("pop")), in_taste(fit(name))
    # measured: popularity 0.24; rp3beta 0.66 (lowest), EASE 0.82, ALS 0.96, tagknn 0.99
    assert ours >= 2.5 * pop, f"{name}: {ours:.2f} in taste vs popularity {pop:.2f}"


def test_empty_history_on_realistic_data_is_the_popularity_list(realistic) -> None:
    train, _, _, fit = realistic
    empty = sp.csr_matrix((1, train.shape[1]), dtype=np.float32)
    expected, expected_scores = fit("pop").recommend(0, empty, N=10)
    for name in REALISTIC:
        ids, scores = fit(name).recommend(0, empty, N=10)
        np.testing.assert_array_equal(scores, expected_scores, err_msg=name)
        assert set(ids) == set(expected) or np.unique(expected_scores).size < 10, name
