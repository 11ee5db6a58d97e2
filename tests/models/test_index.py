"""The FAISS item index: exact below the size setting, HNSW above, recall vs exact."""

from __future__ import annotations

import numpy as np
import pytest

from encore.settings import Settings
from models.index import IndexConfig, ItemIndex, ItemIndexError, measure, recall_at_k


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    # clustered vectors, like item factors of artists in genres
    centres = rng.standard_normal((20, 32))
    return (centres[rng.integers(0, 20, 5000)] + 0.3 * rng.standard_normal((5000, 32))).astype(
        np.float32
    )


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vectors.T
    return np.argsort(-scores, axis=1)[:, :k]


def test_small_catalogue_is_exact(vectors: np.ndarray) -> None:
    index = ItemIndex.build(vectors, IndexConfig(exact_max_items=10_000))
    assert index.kind == "flat-ip"
    queries = vectors[:50]
    _, ids = index.search(queries, 10)
    assert recall_at_k(ids, brute_force(vectors, queries, 10)) == pytest.approx(1.0)


def test_large_catalogue_uses_hnsw_with_high_recall(vectors: np.ndarray) -> None:
    config = IndexConfig(exact_max_items=1_000, hnsw_m=32, ef_construction=200, ef_search=128)
    index = ItemIndex.build(vectors, config)
    assert index.kind == "hnsw-ip"
    # queries like user vectors: mixtures of item vectors
    rng = np.random.default_rng(1)
    queries = (vectors[rng.integers(0, 5000, (200, 3))].mean(axis=1)).astype(np.float32)
    result = measure(index, vectors, queries, 10)
    assert result["recall@10"] >= 0.9, result
    assert result["items"] == 5000 and result["queries"] == 200
    # the recall measure reports is the one of the index's own answers against brute force
    _, ids = index.search(queries, 10)
    assert result["recall@10"] == pytest.approx(recall_at_k(ids, brute_force(vectors, queries, 10)))


@pytest.mark.parametrize("approximate", ["hnsw", "ivf"])
def test_approximate_index_returns_the_exact_neighbours_of_a_planted_vector(
    vectors: np.ndarray, approximate: str
) -> None:
    """Ten items planted along a query direction, with growing norms, are its inner-product
    neighbours by a wide margin: the index must return exactly them, largest first."""
    rng = np.random.default_rng(4)
    query = rng.standard_normal(32).astype(np.float32)
    query /= np.linalg.norm(query)
    planted_at = rng.choice(len(vectors), 10, replace=False)
    catalogue = vectors.copy()
    scale = np.abs(vectors @ query).max()
    for rank, item in enumerate(planted_at):
        catalogue[item] = query * scale * (30 - rank) + 0.01 * rng.standard_normal(32)
    config = IndexConfig(
        exact_max_items=1_000, approximate=approximate, ivf_nlist=64, ivf_nprobe=4, ef_search=16
    )
    index = ItemIndex.build(catalogue, config)
    assert index.kind == f"{approximate}-ip"
    _, ids = index.search(query[None, :], 10)
    assert ids[0].tolist() == planted_at.tolist()


def test_recall_is_computed_not_assumed() -> None:
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    approx = np.array([[1, 2, 9, 9], [5, 6, 7, 8]])
    assert recall_at_k(approx, exact) == pytest.approx((2 + 4) / 8)


def test_threshold_comes_from_settings() -> None:
    settings = Settings(models={"faiss_exact_max_items": 7, "faiss_hnsw_ef_search": 33})
    config = IndexConfig.from_settings(settings)
    assert config.exact_max_items == 7 and config.ef_search == 33
    vectors = np.eye(8, dtype=np.float32)
    assert ItemIndex.build(vectors, config).kind == "hnsw-ip"
    assert ItemIndex.build(vectors[:7], config).kind == "flat-ip"


def test_save_and_load(vectors: np.ndarray, tmp_path) -> None:
    config = IndexConfig(exact_max_items=1_000, ef_search=48)
    index = ItemIndex.build(vectors, config)
    loaded = ItemIndex.load(index.save(tmp_path / "idx"))
    assert loaded.kind == "hnsw-ip" and loaded.size == 5000
    assert loaded.index.hnsw.efSearch == 48
    np.testing.assert_array_equal(index.search(vectors[:5], 5)[1], loaded.search(vectors[:5], 5)[1])
    with pytest.raises(ItemIndexError, match="no FAISS index"):
        ItemIndex.load(tmp_path / "missing")


def test_cosine_mode_finds_the_item_itself(vectors: np.ndarray) -> None:
    index = ItemIndex.build(vectors * 3.0, IndexConfig(normalize=True))
    _, ids = index.search(vectors[:20], 1)
    np.testing.assert_array_equal(ids[:, 0], np.arange(20))


def test_hnsw_scores_are_inner_products(vectors: np.ndarray) -> None:
    index = ItemIndex.build(vectors, IndexConfig(exact_max_items=1_000))
    scores, ids = index.search(vectors[:10], 5)
    expected = np.einsum("qd,qkd->qk", vectors[:10], vectors[ids])
    np.testing.assert_allclose(scores, expected, rtol=1e-3, atol=1e-3)


def test_wider_search_finds_more(vectors: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    queries = rng.standard_normal((200, 32)).astype(np.float32)
    narrow = ItemIndex.build(vectors, IndexConfig(exact_max_items=1_000, hnsw_m=8, ef_search=10))
    recall_narrow = measure(narrow, vectors, queries, 10)["recall@10"]
    narrow.index.hnsw.efSearch = 400
    recall_wide = measure(narrow, vectors, queries, 10)["recall@10"]
    assert recall_wide > recall_narrow


def test_ivf_option_has_high_recall_and_round_trips(vectors: np.ndarray, tmp_path) -> None:
    config = IndexConfig(exact_max_items=1_000, approximate="ivf", ivf_nlist=64, ivf_nprobe=16)
    index = ItemIndex.build(vectors, config)
    assert index.kind == "ivf-ip"
    rng = np.random.default_rng(3)
    queries = (vectors[rng.integers(0, 5000, (200, 3))].mean(axis=1)).astype(np.float32)
    assert measure(index, vectors, queries, 10)["recall@10"] >= 0.9
    loaded = ItemIndex.load(index.save(tmp_path / "ivf"))
    assert loaded.kind == "ivf-ip" and loaded.index.nprobe == 16
