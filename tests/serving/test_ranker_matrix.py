"""The service builds the ranker's input in numpy; training built it with polars
(``with_derived_features``, ``Ranker.score``). The two must give the same scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from models.ranker_training import with_derived_features
from models.ranking import train_ranker
from serving.ranker import ServedRanker, ranker_matrix

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
GENRES = ["jazz", "rock", "folk", None]


def frame(rng: np.random.Generator, queries: int, top: str | None, last: datetime | None):
    rows = []
    for q in range(queries):
        for i in range(12):
            genre = GENRES[int(rng.integers(0, len(GENRES)))]
            rows.append(
                {
                    "query_id": f"q{q}",
                    "user_id": "u",
                    "song_id": f"s{q}-{i}",
                    "event_timestamp": NOW,
                    "label": int(genre == "jazz") * 2,
                    "candidate_score": None if i % 5 == 0 else float(rng.random()),
                    "model_rank": None if i % 3 == 0 else int(rng.integers(1, 200)),
                    "trending_rank": None,
                    "artist_rank": int(rng.integers(1, 5)) if i % 4 == 0 else None,
                    "song_activity__plays_7d": None if i % 6 == 0 else int(rng.integers(0, 9)),
                    "song_activity__genre": genre,
                    "listener_activity__plays_7d": 7,
                    "listener_activity__top_genre_28d": top,
                    "listener_activity__second_genre_28d": "rock",
                    "listener_activity__last_played_at": last,
                }
            )
    return with_derived_features(pl.DataFrame(rows, strict=False))


def test_numpy_input_scores_like_the_training_path() -> None:
    rng = np.random.default_rng(3)
    columns = [
        "candidate_score",
        "model_rank",
        "trending_rank",
        "artist_rank",
        "song_activity__plays_7d",
        "song_activity__genre",
        "listener_activity__plays_7d",
        "genre_is_top",
        "genre_is_second",
        "hours_since_last_play",
    ]
    ranker = train_ranker(
        frame(rng, 40, "jazz", NOW - timedelta(hours=5)), columns, params={"n_estimators": 30}
    )
    assert "song_activity__genre" in ranker.categories  # a categorical column is covered
    served = ServedRanker("1", ranker, {})
    for top, last in (("jazz", NOW - timedelta(hours=2)), (None, None), ("folk", NOW)):
        request = frame(rng, 1, top, last)
        listener = {
            "listener_activity__plays_7d": 7,
            "listener_activity__top_genre_28d": top,
            "listener_activity__second_genre_28d": "rock",
            "listener_activity__last_played_at": last,
        }
        per_row = {
            name: request[name].to_list()
            for name in request.columns
            if not name.startswith("listener_activity")
        }
        ours = served.ranker.booster.predict(
            ranker_matrix(served, per_row, listener, request.height, NOW), num_threads=1
        )
        np.testing.assert_allclose(ours, ranker.score(request), rtol=1e-12)
