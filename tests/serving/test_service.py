"""The recommendation service over HTTP, against the real Redis, MLflow and a Delta lake.

Every answer is checked against the rules the issue sets (not played recently, licensed in
the listener's country, no explicit song for a listener who opted out, at most two songs of
an artist in the top 10), from the other listener's side, and with its dependencies gone.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from encore import keys
from encore.settings import Settings
from encore.tokens import issue_token
from serving.app import create_app
from tests.conftest import free_port
from tests.serving.world import World, build_world, serving_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(platform: Settings, tmp_path_factory) -> World:
    settings = serving_settings(platform, str(tmp_path_factory.mktemp("lake")))
    return build_world(settings)


@pytest.fixture(scope="module")
def client(world: World):
    with TestClient(create_app(world.settings)) as client:
        yield client


def bearer(settings: Settings, user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, user_id)}"}


def service(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.api.service_token.get_secret_value()}"}


def redis_of(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis.effective_url)


def play(client: redis.Redis, user: str, song: str, minutes_ago: float) -> None:
    start = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    entry = keys.recent_entry(
        f"e-{user}-{song}-{minutes_ago}", song, "complete", int(start.timestamp() * 1e6), 200_000
    )
    client.lpush(keys.recent_key(user), entry)


def played_by(world: World, user: str) -> set[str]:
    row = [str(u) for u in world.data.user_ids].index(user)
    return {str(world.data.item_ids[i]) for i in world.data.user_items[row].indices}


def listener_who(world: World, allow_explicit: bool) -> str:
    return next(u for u, row in world.listeners.items() if row["allow_explicit"] is allow_explicit)


def test_for_you_follows_every_rule(world: World, client: TestClient) -> None:
    user = listener_who(world, allow_explicit=False)
    recently = "item-0" if "item-0" in world.songs else next(iter(world.songs))
    store = redis_of(world.settings)
    store.delete(keys.recent_key(user))
    play(store, user, recently, minutes_ago=60 * 24 * 2)  # two days ago: still excluded

    answer = client.get(
        "/api/v1/recommendations/for-you?limit=20", headers=bearer(world.settings, user)
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    songs = [item["song_id"] for item in body["items"]]
    assert len(songs) == 20 and len(set(songs)) == 20
    assert body["model"]["name"] == world.settings.serving.model_name
    assert body["variant"] == "champion" and body["degraded"] == []
    # the model's own training rows (all of a listener's plays the lake had) are excluded too
    played = client.app.state.recommender.models["champion"].current.played(user)
    assert played and not set(songs) & played
    assert recently not in songs
    for song in songs:
        assert not world.songs[song]["explicit"], song
        assert "US" in world.songs[song]["territories"], song
    per_artist = Counter(world.songs[s]["artist_id"] for s in songs[:10])
    assert max(per_artist.values()) <= world.settings.serving.max_per_artist
    assert any("model" in item["sources"] for item in body["items"])


def test_a_genre_request_answers_that_genre_only(world: World, client: TestClient) -> None:
    user = listener_who(world, allow_explicit=True)
    answer = client.get(
        "/api/v1/recommendations/for-you?limit=10&genre=jazz", headers=bearer(world.settings, user)
    )
    assert answer.status_code == 200
    genres = {item["genre"] for item in answer.json()["items"]}
    assert genres == {"jazz"}
    unknown = client.get(
        "/api/v1/recommendations/for-you?genre=polka", headers=bearer(world.settings, user)
    )
    assert unknown.status_code == 422 and "polka" in unknown.json()["detail"]


def test_only_the_listener_reads_their_list(world: World, client: TestClient) -> None:
    me, other = list(world.listeners)[:2]
    theirs = client.get(
        f"/api/v1/recommendations/for-you?user_id={other}", headers=bearer(world.settings, me)
    )
    assert theirs.status_code == 403 and other not in theirs.text.split("own")[1]
    assert client.get("/api/v1/recommendations/for-you").status_code == 401
    forged = issue_token(
        world.settings.model_copy(
            update={
                "api": world.settings.api.model_copy(
                    update={"jwt_secret": SecretStr("another-secret-of-at-least-32-bytes!!")}
                )
            }
        ),
        me,
    )
    assert (
        client.get(
            "/api/v1/recommendations/for-you", headers={"Authorization": f"Bearer {forged}"}
        ).status_code
        == 401
    )
    # the service token acts for the platform: it must say whose list it wants
    assert (
        client.get("/api/v1/recommendations/for-you", headers=service(world.settings)).status_code
        == 422
    )
    on_behalf = client.get(
        f"/api/v1/recommendations/for-you?user_id={other}", headers=service(world.settings)
    )
    assert on_behalf.status_code == 200 and on_behalf.json()["user_id"] == other


def test_a_listener_without_history_gets_popular_songs_they_may_hear(
    world: World, client: TestClient
) -> None:
    answer = client.get(
        "/api/v1/recommendations/for-you?limit=10", headers=bearer(world.settings, "newcomer-1")
    )
    body = answer.json()
    assert answer.status_code == 200 and body["cold_start"] is True
    songs = [item["song_id"] for item in body["items"]]
    assert len(songs) == 10
    # no country on file: only songs licensed everywhere; unknown listener: no explicit
    for song in songs:
        assert set(world.songs[song]["territories"]) == {"DE", "GB", "US"}
        assert not world.songs[song]["explicit"]
    assert all("popular" in item["sources"] for item in body["items"])


def test_the_session_changes_the_next_answer(world: World, client: TestClient) -> None:
    user = listener_who(world, allow_explicit=True)
    store = redis_of(world.settings)
    store.delete(keys.recent_key(user))
    url = "/api/v1/recommendations/for-you?limit=10"
    before = client.get(url, headers=bearer(world.settings, user)).json()["items"]
    metal = [s for s, row in world.songs.items() if row["genre"] == "metal"][:4]
    for i, song in enumerate(metal):
        play(store, user, song, minutes_ago=4 - i)

    after = client.get(url, headers=bearer(world.settings, user)).json()["items"]

    count = lambda items: sum(item["genre"] == "metal" for item in items)  # noqa: E731
    assert count(after) > count(before)
    assert any("session" in item["sources"] for item in after)
    assert not {item["song_id"] for item in after} & set(metal)


def test_a_precomputed_list_is_what_the_model_proposes(world: World, client: TestClient) -> None:
    user = list(world.listeners)[5]
    store = redis_of(world.settings)
    store.delete(keys.recent_key(user))
    played = played_by(world, user)
    # the worldwide, clean songs FAISS would rank last: only a precomputed list proposes them
    chosen = [
        s
        for s in reversed(list(world.songs))
        if s not in played
        and not s.startswith("new-song")
        and not world.songs[s]["explicit"]
        and "US" in world.songs[s]["territories"]
    ][:30]
    version = client.get("/api/v1/health/ready").json()["models"]["champion"]
    recs = keys.PrecomputedRecs(
        version, datetime.now(UTC), [(s, 1.0 - i / 100) for i, s in enumerate(chosen)]
    )
    keys.write_recs(store, world.settings.serving.model_name, user, recs, ttl_s=60)
    try:
        items = client.get(
            f"/api/v1/recommendations/for-you?limit=20&user_id={user}",
            headers=service(world.settings),
        ).json()["items"]
    finally:
        store.delete(keys.recs_key(world.settings.serving.model_name, user))
    from_model = {item["song_id"] for item in items if "model" in item["sources"]}
    assert from_model and from_model <= set(chosen)


def test_similar_songs_and_new_songs_through_content(world: World, client: TestClient) -> None:
    user = listener_who(world, allow_explicit=True)
    known = str(world.data.item_ids[10])
    answer = client.get(
        f"/api/v1/songs/{known}/similar?limit=5", headers=bearer(world.settings, user)
    )
    assert answer.status_code == 200
    items = answer.json()["items"]
    assert len(items) == 5 and known not in {i["song_id"] for i in items}
    assert all(i["sources"] == ["model"] for i in items)

    new = "new-song-2"
    fresh = client.get(f"/api/v1/songs/{new}/similar?limit=5", headers=bearer(world.settings, user))
    items = fresh.json()["items"]
    assert fresh.status_code == 200 and items and all(i["sources"] == ["content"] for i in items)
    genre, artist = world.songs[new]["genre"], world.songs[new]["artist_id"]
    assert all(i["genre"] == genre or i["artist_id"] == artist for i in items)
    missing = client.get("/api/v1/songs/nope/similar", headers=bearer(world.settings, user))
    assert missing.status_code == 404


def test_new_songs_enter_for_you_through_content(world: World, client: TestClient) -> None:
    user = listener_who(world, allow_explicit=True)
    items = client.get(
        "/api/v1/recommendations/for-you?limit=100", headers=bearer(world.settings, user)
    ).json()["items"]
    content = [i for i in items if "content" in i["sources"]]
    assert content and all(i["song_id"].startswith("new-song") for i in content)


def test_trending_reads_the_country_window(world: World, client: TestClient) -> None:
    store = redis_of(world.settings)
    us = [s for s, row in world.songs.items() if "US" in row["territories"]][:3]
    gb_only = next(s for s, row in world.songs.items() if row["territories"] == ["GB"])
    store.delete(keys.trending_key("US"))
    store.zadd(keys.trending_key("US"), {us[0]: 5, us[1]: 9, us[2]: 1, gb_only: 50})
    answer = client.get(
        "/api/v1/recommendations/trending?country=US&limit=5", headers=service(world.settings)
    )
    assert answer.status_code == 200
    assert [i["song_id"] for i in answer.json()["items"]] == [us[1], us[0], us[2]]
    bad = client.get("/api/v1/recommendations/trending?country=XX", headers=service(world.settings))
    assert bad.status_code == 422


def test_redis_down_answers_without_realtime_and_says_so(world: World) -> None:
    down = world.settings.model_copy(
        update={
            "redis": world.settings.redis.model_copy(
                update={"url": f"redis://127.0.0.1:{free_port()}/0"}
            )
        }
    )
    user = list(world.listeners)[3]
    with TestClient(create_app(down)) as client:
        answer = client.get("/api/v1/recommendations/for-you", headers=bearer(down, user))
        trending = client.get(
            "/api/v1/recommendations/trending?country=US", headers=bearer(down, user)
        )
    assert answer.status_code == 200 and answer.json()["degraded"] == ["realtime"]
    assert len(answer.json()["items"]) == 20
    assert trending.status_code == 200 and trending.json()["degraded"] == ["realtime"]
    assert trending.json()["items"]


def test_an_empty_registry_answers_popularity_flagged(world: World) -> None:
    empty = world.settings.model_copy(
        update={
            "serving": world.settings.serving.model_copy(update={"model_name": "never-registered"})
        }
    )
    user = list(world.listeners)[3]
    with TestClient(create_app(empty)) as client:
        answer = client.get("/api/v1/recommendations/for-you", headers=bearer(empty, user))
        similar = client.get(
            f"/api/v1/songs/{world.data.item_ids[0]}/similar", headers=bearer(empty, user)
        )
    body = answer.json()
    assert answer.status_code == 200 and "model" in body["degraded"] and body["model"] is None
    assert body["items"] and all(
        "popular" in i["sources"] or "trending" in i["sources"] for i in body["items"]
    )
    assert similar.status_code == 200 and "model" in similar.json()["degraded"]


def test_the_service_refuses_default_secrets_outside_development(world: World) -> None:
    from encore.errors import ConfigurationError

    production = world.settings.model_copy(update={"development": False})
    with pytest.raises(ConfigurationError, match="ENCORE_API__JWT_SECRET"):
        create_app(production)
