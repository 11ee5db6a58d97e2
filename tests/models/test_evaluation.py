"""Metrics against hand-computed cases, and the evaluation loop on a known model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from models import create_recommender
from models.evaluation import evaluate, ranking_metrics


def _test_matrix(rows: dict[int, list[int]], shape: tuple[int, int]) -> sp.csr_matrix:
    r = [u for u, items in rows.items() for _ in items]
    c = [i for items in rows.values() for i in items]
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=shape)


def test_metrics_match_hand_computed_values() -> None:
    # user 0: relevant {1, 3}, ranked [3, 5, 1] -> hits at ranks 1 and 3
    # user 1: relevant {4}, ranked [0, 2, -] -> no hit (and a padded slot)
    # user 2: no relevant item -> not averaged
    test = _test_matrix({0: [1, 3], 1: [4]}, (3, 10))
    recommended = np.array([[3, 5, 1], [0, 2, -1]])
    popularity = np.zeros(10)
    popularity[3] = 3  # played by every train user: p = 1, no surprise
    m = ranking_metrics(recommended, test, np.array([0, 1]), 3, popularity, n_users=3)

    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert m["users"] == 2
    assert m["precision@3"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["recall@3"] == pytest.approx((1.0 + 0) / 2)
    assert m["ndcg@3"] == pytest.approx((dcg / idcg + 0) / 2)
    assert m["map@3"] == pytest.approx(((1 + 2 / 3) / 2 + 0) / 2)
    assert m["hit_rate@3"] == pytest.approx(0.5)
    assert m["coverage@3"] == pytest.approx(5 / 10)  # {3, 5, 1, 0, 2}
    # -log2((pop + 1) / (users + 1)): item 3 -> 0 bits, the four others -> 2 bits
    assert m["novelty@3"] == pytest.approx((0 + 2 + 2 + 2 + 2) / 5)


def test_perfect_and_empty_rankings() -> None:
    test = _test_matrix({0: [0, 1], 1: [2]}, (2, 5))
    perfect = ranking_metrics(np.array([[0, 1], [2, 3]]), test, np.array([0, 1]), 2)
    assert perfect["ndcg@2"] == pytest.approx(1.0)
    assert perfect["map@2"] == pytest.approx(1.0)
    assert perfect["recall@2"] == pytest.approx(1.0)
    assert perfect["precision@2"] == pytest.approx((1.0 + 0.5) / 2)
    nothing = ranking_metrics(np.full((2, 2), -1), test, np.array([0, 1]), 2)
    assert nothing["ndcg@2"] == 0 and nothing["hit_rate@2"] == 0 and nothing["coverage@2"] == 0


def test_ndcg_rewards_earlier_hits() -> None:
    test = _test_matrix({0: [7]}, (1, 10))
    early = ranking_metrics(np.array([[7, 1, 2]]), test, np.array([0]), 3)["ndcg@3"]
    late = ranking_metrics(np.array([[1, 2, 7]]), test, np.array([0]), 3)["ndcg@3"]
    assert early == pytest.approx(1.0)
    assert late == pytest.approx(1 / math.log2(4))


def test_evaluate_filters_training_items_and_ranks_everything() -> None:
    # popularity: items 0 > 1 > 2 > 3 by listeners; user 0 already played item 0
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=np.float32))
    test = _test_matrix({0: [1]}, (3, 4))
    model = create_recommender("pop").fit(train)
    m = evaluate(model, train, test, k=1)
    # item 0 is filtered, so the top-1 is item 1: a hit
    assert m["ndcg@1"] == pytest.approx(1.0) and m["users"] == 1
    m3 = evaluate(model, train, _test_matrix({0: [3]}, (3, 4)), k=2)
    assert m3["hit_rate@2"] == 0.0  # item 3 ranks third among unseen items


def test_candidate_items_restrict_the_ranking() -> None:
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0]], dtype=np.float32))
    model = create_recommender("pop").fit(train)
    test = _test_matrix({0: [3]}, (2, 4))
    assert evaluate(model, train, test, k=1)["hit_rate@1"] == 0.0
    assert evaluate(model, train, test, k=1, items=np.array([3]))["hit_rate@1"] == 1.0
