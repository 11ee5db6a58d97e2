"""The second stage in the service: a registered ranker over Feast's online features
(materialised to the real Redis), and the time budget that skips it."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from fastapi.testclient import TestClient
from redis import Redis

from encore import keys
from encore.settings import Settings
from encore.tables import ARTIST_POPULARITY, LISTENER_ACTIVITY, SONG_ACTIVITY, Table
from encore.tokens import issue_token
from features import store
from models.ranker_training import (
    DERIVED_FEATURES,
    REQUEST_FEATURES,
    register_ranker,
    with_derived_features,
)
from models.ranking import train_ranker
from serving.app import create_app
from tests.serving.world import World, build_world, serving_settings

pytestmark = pytest.mark.integration

DAY = date.today() - timedelta(days=1)
KNOWN = datetime.combine(DAY + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
FEAST_COLUMNS = [
    "listener_activity__plays_7d",
    "song_activity__plays_7d",
    "song_activity__genre",
    "listener_activity__top_genre_28d",
    "listener_activity__second_genre_28d",
    "listener_activity__last_played_at",
    "artist_popularity__plays_28d",
]


def write(settings: Settings, table: Table, rows: list[dict]) -> None:
    schema = table.arrow_schema()
    data = pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema)
    write_deltalake(table.path(settings), data, mode="overwrite", partition_by=["feature_date"])


def feature_rows(world: World) -> None:
    base = {"feature_date": DAY, "event_timestamp": KNOWN}
    write(
        world.settings,
        LISTENER_ACTIVITY,
        [
            {
                **base,
                "user_id": user,
                "plays_7d": 10 + i % 7,
                "plays_28d": 40,
                "distinct_artists_28d": 5,
                "top_genre_28d": "jazz",
                "second_genre_28d": "rock",
                "active_hours_28d": 3,
                "last_played_at": KNOWN - timedelta(hours=3),
            }
            for i, user in enumerate(world.listeners)
        ],
    )
    write(
        world.settings,
        SONG_ACTIVITY,
        [
            {
                **base,
                "song_id": song,
                "artist_id": row["artist_id"],
                "genre": row["genre"],
                "plays_1d": i % 5,
                "plays_7d": i % 11,
                "listeners_7d": 1,
                "age_days": 100,
            }
            for i, (song, row) in enumerate(world.songs.items())
        ],
    )
    artists = sorted({row["artist_id"] for row in world.songs.values()})
    write(
        world.settings,
        ARTIST_POPULARITY,
        [
            {
                **base,
                "artist_id": artist,
                "plays_7d": i,
                "plays_28d": 3 * i,
                "listeners_28d": i,
                "popularity_rank_28d": i + 1,
            }
            for i, artist in enumerate(artists)
        ],
    )


def tiny_ranker(world: World):
    """A LambdaRank model over the columns the service builds: jazz songs rank first."""
    rng = np.random.default_rng(0)
    songs = list(world.songs)[:60]
    rows = []
    for q in range(30):
        for song in rng.choice(songs, 20, replace=False):
            genre = world.songs[song]["genre"]
            rows.append(
                {
                    "query_id": f"q{q}",
                    "user_id": "u",
                    "song_id": str(song),
                    "event_timestamp": KNOWN,
                    "label": 2 if genre == "jazz" else 0,
                    "candidate_score": float(rng.random()),
                    "model_rank": int(rng.integers(1, 200)),
                    "trending_rank": None,
                    "artist_rank": None,
                    "listener_activity__plays_7d": 12,
                    "song_activity__plays_7d": int(rng.integers(0, 10)),
                    "song_activity__genre": genre,
                    "listener_activity__top_genre_28d": "jazz",
                    "listener_activity__second_genre_28d": "rock",
                    "listener_activity__last_played_at": KNOWN - timedelta(hours=3),
                    "artist_popularity__plays_28d": int(rng.integers(0, 50)),
                }
            )
    frame = with_derived_features(pl.DataFrame(rows))
    columns = [
        *REQUEST_FEATURES,
        "listener_activity__plays_7d",
        "song_activity__plays_7d",
        "artist_popularity__plays_28d",
        *DERIVED_FEATURES,
    ]
    return train_ranker(frame, columns, params={"n_estimators": 20})


@pytest.fixture(scope="module")
def world(platform: Settings, tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("ranked")
    settings = serving_settings(platform, str(root / "lake"))
    settings = settings.model_copy(
        update={
            "features": settings.features.model_copy(
                update={"repo": str(root / "features"), "project": f"t{uuid.uuid4().hex[:8]}"}
            ),
            "serving": settings.serving.model_copy(
                update={"ranker_name": f"test-ranker-{uuid.uuid4().hex[:8]}"}
            ),
        }
    )
    world = build_world(settings)
    feature_rows(world)
    store.apply(settings)
    store.materialize(settings, end=KNOWN + timedelta(hours=1))
    ranker = tiny_ranker(world)
    register_ranker(settings, ranker, {}, {"ndcg@10": 0.5}, {"name": "test"}, "fp")
    return world


def test_the_ranker_orders_over_online_features(world: World) -> None:
    user = next(u for u, row in world.listeners.items() if row["allow_explicit"])
    headers = {"Authorization": f"Bearer {issue_token(world.settings, user)}"}
    Redis.from_url(world.settings.redis.effective_url).delete(keys.recent_key(user))  # no session
    with TestClient(create_app(world.settings)) as client:
        body = client.get("/api/v1/recommendations/for-you?limit=10", headers=headers).json()
    assert body["ranker"] == "1" and body["degraded"] == [], body
    # it learned that jazz wins: the listener's top 10 leans to jazz beyond the genre's share
    jazz = sum(item["genre"] == "jazz" for item in body["items"])
    assert jazz >= 4, body["items"]


def test_a_feature_read_over_budget_is_skipped_and_flagged(world: World) -> None:
    user = next(iter(world.listeners))
    headers = {"Authorization": f"Bearer {issue_token(world.settings, user)}"}
    redis = Redis.from_url(world.settings.redis.effective_url)
    with TestClient(create_app(world.settings)) as client:
        warm = client.get("/api/v1/recommendations/for-you?limit=10", headers=headers).json()
        # a real slow store: Redis holds every client's commands for 400 ms
        redis.execute_command("CLIENT", "PAUSE", 400, "ALL")
        started = time.perf_counter()
        answer = client.get("/api/v1/recommendations/for-you?limit=10", headers=headers)
        took_s = time.perf_counter() - started
    body = answer.json()
    assert warm["ranker"] == "1"
    assert answer.status_code == 200, answer.text
    assert "features" in body["degraded"] and body["ranker"] is None
    assert len(body["items"]) == 10
    assert took_s < 0.4  # it did not wait for the paused store
