"""The learned ranker's core: labelling from a time split, training, metrics, persistence."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from encore.errors import DatasetError
from models.ranking import Ranker, evaluate, feature_matrix, labelled_impressions, train_ranker

FEATURES = ["affinity", "noise", "device"]


def _synthetic(n_queries: int, per_query: int, seed: int) -> pl.DataFrame:
    """Candidates whose label follows ``affinity`` while ``candidate_score`` is noise."""
    rng = np.random.default_rng(seed)
    n = n_queries * per_query
    affinity = rng.random(n)
    label = np.where(affinity > 0.85, 2, np.where(affinity > 0.7, 1, 0))
    query = np.repeat(np.arange(n_queries), per_query)
    return pl.DataFrame(
        {
            "query_id": [f"q{seed}-{q:03d}" for q in query],
            "user_id": [f"u{q}" for q in query],
            "song_id": [f"s{i}" for i in rng.integers(0, 300, n)],
            "event_timestamp": [datetime(2026, 11, 1, tzinfo=UTC)] * n,
            "label": label,
            "candidate_score": rng.random(n),
            "affinity": affinity,
            "noise": rng.normal(size=n),
            "device": rng.choice(["mobile", "web", "tv"], n).tolist(),
        }
    ).unique(["query_id", "song_id"], keep="first", maintain_order=True)


@pytest.fixture(scope="module")
def train_frame() -> pl.DataFrame:
    return _synthetic(40, 20, seed=1)


@pytest.fixture(scope="module")
def test_frame() -> pl.DataFrame:
    return _synthetic(25, 20, seed=2)


@pytest.fixture(scope="module")
def ranker(train_frame: pl.DataFrame) -> Ranker:
    return train_ranker(train_frame, FEATURES, {"n_estimators": 40}, num_threads=1, seed=7)


def test_ranker_beats_the_candidate_ordering_when_a_feature_predicts_the_label(
    ranker: Ranker, test_frame: pl.DataFrame
) -> None:
    reranked = ranker.rerank(test_frame)
    ranked = evaluate(reranked, "ranker_score", catalog_size=300)["ndcg@10"]
    candidate = evaluate(reranked, "candidate_score", catalog_size=300)["ndcg@10"]
    ideal = evaluate(reranked, "label", catalog_size=300)["ndcg@10"]
    # The ranker must close at least half the gap between the candidate order and the ideal.
    assert ideal == pytest.approx(1.0)
    assert ranked >= candidate + 0.5 * (ideal - candidate)


def test_rerank_orders_each_query_by_the_ranker_score(
    ranker: Ranker, test_frame: pl.DataFrame
) -> None:
    reranked = ranker.rerank(test_frame)
    assert reranked.height == test_frame.height
    for _, group in reranked.group_by("query_id"):
        scores = group["ranker_score"].to_numpy()
        assert np.all(np.diff(scores) <= 0)
        assert group["ranker_rank"].to_list() == list(range(1, group.height + 1))


def test_metrics_on_a_hand_made_two_query_example() -> None:
    # q1: a, b, c by score; relevant (label > 0) b and c, at ranks 2 and 3.
    # q2: a, d by score; relevant a, at rank 1.
    frame = pl.DataFrame(
        {
            "query_id": ["q1", "q1", "q1", "q2", "q2"],
            "song_id": ["a", "b", "c", "a", "d"],
            "label": [0, 2, 1, 1, 0],
            "candidate_score": [3.0, 2.0, 1.0, 5.0, 4.0],
        }
    )
    m = evaluate(frame, "candidate_score", k=2, recall_k=2, catalog_size=10)

    ndcg_q1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))  # hit at rank 2 of 2 possible
    ndcg_q2 = 1.0
    assert m["ndcg@2"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2)
    assert m["recall@2"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    assert m["coverage@2"] == pytest.approx(3 / 10)  # {a, b} and {a, d}
    assert m["queries"] == 2

    # Reversing q1's scores puts both relevant songs on top: ndcg 1 there.
    reversed_q1 = frame.with_columns(
        pl.when(pl.col("query_id") == "q1")
        .then(-pl.col("candidate_score"))
        .otherwise(pl.col("candidate_score"))
        .alias("other")
    )
    m = evaluate(reversed_q1, "other", k=2, recall_k=2, catalog_size=10)
    assert m["ndcg@2"] == pytest.approx(1.0)
    assert m["coverage@2"] == pytest.approx(4 / 10)  # {c, b} and {a, d}

    with pytest.raises(DatasetError, match="catalog_size"):
        evaluate(frame, "candidate_score", catalog_size=2)

    # With the window's positives counted: q1 played one more song nobody proposed, and q3
    # played two songs while none of its candidates (e) was played.
    with_missed = pl.concat(
        [
            frame.with_columns(
                pl.when(pl.col("query_id") == "q1").then(3).otherwise(1).alias("window_positives")
            ),
            pl.DataFrame(
                {
                    "query_id": ["q3"],
                    "song_id": ["e"],
                    "label": [0],
                    "candidate_score": [1.0],
                    "window_positives": [2],
                }
            ),
        ],
        how="vertical_relaxed",
    )
    m = evaluate(with_missed, "candidate_score", k=2, recall_k=2, catalog_size=10)
    assert m["recall@2"] == pytest.approx((1 / 3 + 1 / 1 + 0) / 3)
    assert m["ndcg@2"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2)  # within the candidates
    assert m["coverage@2"] == pytest.approx(4 / 10)  # {a, b}, {a, d}, {e}


def test_save_and_load_give_the_same_scores(
    ranker: Ranker, test_frame: pl.DataFrame, tmp_path
) -> None:
    loaded = Ranker.load(ranker.save(tmp_path / "ranker"))
    assert loaded.feature_columns == FEATURES
    assert loaded.categories == {"device": ["mobile", "tv", "web"]}
    np.testing.assert_array_equal(loaded.score(test_frame), ranker.score(test_frame))


def test_unseen_and_missing_categories_score_as_missing(
    ranker: Ranker, test_frame: pl.DataFrame
) -> None:
    rows = test_frame.head(3)
    unseen = rows.with_columns(pl.Series("device", ["car", None, "watch"]))
    missing = rows.with_columns(pl.lit(None, dtype=pl.Utf8).alias("device"))
    codes = feature_matrix(unseen, ["device"], ranker.categories)[:, 0]
    assert np.isnan(codes).all()
    known = feature_matrix(
        rows.with_columns(pl.lit("web").alias("device")), ["device"], ranker.categories
    )
    assert known[:, 0].tolist() == [2.0, 2.0, 2.0]  # index in the sorted list mobile, tv, web
    np.testing.assert_array_equal(ranker.score(unseen), ranker.score(missing))
    with pytest.raises(DatasetError, match="affinity"):
        ranker.score(rows.drop("affinity"))


def test_training_is_deterministic(train_frame: pl.DataFrame, test_frame: pl.DataFrame) -> None:
    first = train_ranker(train_frame, FEATURES, {"n_estimators": 15}, num_threads=2, seed=3)
    # Same rows in another order: the ranker sorts them, so the model is the same.
    shuffled = train_frame.sample(fraction=1.0, shuffle=True, seed=5)
    second = train_ranker(shuffled, FEATURES, {"n_estimators": 15}, num_threads=2, seed=3)
    np.testing.assert_array_equal(first.score(test_frame), second.score(test_frame))


def _play(user: str, song: str, at: datetime, event_type: str, completed: bool, skipped: bool):
    return {
        "user_id": user,
        "song_id": song,
        "start_time": at,
        "event_type": event_type,
        "completed": completed,
        "skipped": skipped,
    }


def test_labelled_impressions_labels_plays_in_the_window_only() -> None:
    request = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    window = timedelta(hours=6)
    inside = request + timedelta(hours=1)
    plays = pl.DataFrame(
        [
            _play("u1", "done", inside, "complete", True, False),
            _play("u1", "skip", inside, "skip", False, True),
            _play("u1", "part", inside, "play", False, False),
            _play("u1", "late", request + window, "complete", True, False),  # window end
            _play("u1", "early", request - timedelta(minutes=1), "complete", True, False),
            _play("u1", "liked", inside, "like", False, False),
            _play("u2", "none", inside, "complete", True, False),  # another listener
            _play("u1", "unproposed", inside, "complete", True, False),  # not a candidate
            # skipped first, completed later in the window: the best label wins
            _play("u1", "again", inside, "skip", False, True),
            _play("u1", "again", inside + timedelta(hours=2), "complete", True, False),
        ]
    )
    songs = ["done", "skip", "part", "late", "early", "liked", "none", "again"]
    candidates = pl.DataFrame(
        {
            "user_id": ["u1"] * len(songs),
            "event_timestamp": [request] * len(songs),
            "song_id": songs,
            "candidate_score": [float(len(songs) - i) for i in range(len(songs))],
            "popularity": list(range(len(songs))),
        }
    )
    frame = labelled_impressions(plays, candidates, window=window)

    labels = dict(zip(frame["song_id"], frame["label"], strict=True))
    assert labels == {
        "done": 2,
        "skip": 0,
        "part": 1,
        "late": 0,
        "early": 0,
        "liked": 0,
        "none": 0,
        "again": 2,
    }
    assert frame.columns[:7] == [
        "query_id",
        "user_id",
        "song_id",
        "event_timestamp",
        "label",
        "candidate_score",
        "candidate_rank",
    ]
    assert "popularity" in frame.columns
    # done, part, again among the candidates, and the unproposed song
    assert frame["window_positives"].to_list() == [4] * len(songs)
    assert frame["query_id"].n_unique() == 1
    assert frame["song_id"].to_list() == songs  # highest candidate score first
    assert frame["candidate_rank"].to_list() == list(range(1, len(songs) + 1))


def test_labelled_impressions_keeps_requests_apart() -> None:
    # The same song proposed at two request times: only the play after each counts.
    first = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
    second = first + timedelta(days=1)
    plays = pl.DataFrame([_play("u1", "s", second + timedelta(hours=1), "complete", True, False)])
    candidates = pl.DataFrame(
        {
            "user_id": ["u1", "u1"],
            "event_timestamp": [first, second],
            "song_id": ["s", "s"],
            "candidate_score": [1.0, 1.0],
        }
    )
    frame = labelled_impressions(plays, candidates, window=timedelta(hours=12))
    assert frame.sort("event_timestamp")["label"].to_list() == [0, 2]
    assert frame["query_id"].n_unique() == 2

    with pytest.raises(DatasetError, match="twice"):
        labelled_impressions(plays, pl.concat([candidates, candidates]))
