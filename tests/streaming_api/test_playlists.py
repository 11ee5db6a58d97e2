"""Playlists through the API against real PostgreSQL: life cycle, order, access, versions.

The module has a database of its own with a hand-made catalog of six songs (``encore.db.ids``).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Engine

from encore.db import create_engine, ids
from encore.db.schema import albums, artists, playlist_songs, playlists, songs
from encore.settings import Settings
from streaming_api.app import create_app
from streaming_api.playlists import MAX_SONGS_PER_PLAYLIST, MAX_SONGS_PER_REQUEST
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 1, tzinfo=UTC)
TITLES = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]
DATABASE = "playlists_api"


@pytest.fixture(scope="module")
def settings(platform: Settings) -> Settings:
    return fresh_database(platform, DATABASE)


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def song_ids(engine: Engine) -> dict[str, str]:
    """Six songs by one artist on one album, by title."""
    artist = ids.artist_id("The Phonetics")
    album = ids.album_id(artist, "Spelled Out")
    by_title = {title: ids.song_id(album, title) for title in TITLES}
    with engine.begin() as connection:
        stamps = {"created_at": NOW, "updated_at": NOW}
        connection.execute(insert(artists).values(artist_id=artist, name="The Phonetics", **stamps))
        connection.execute(
            insert(albums).values(album_id=album, artist_id=artist, title="Spelled Out", **stamps)
        )
        for number, (title, song) in enumerate(by_title.items(), start=1):
            connection.execute(
                insert(songs).values(
                    song_id=song,
                    title=title,
                    artist_id=artist,
                    album_id=album,
                    genre="pop",
                    duration_ms=1000 * number,
                    territories=["GB"],
                    **stamps,
                )
            )
    return by_title


@pytest.fixture(scope="module")
def client(settings: Settings, song_ids: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def listener(client: TestClient) -> dict[str, str]:
    """The auth header of a newly registered listener."""
    username = f"pl-{uuid.uuid4().hex[:8]}"
    body = {"username": username, "password": "analytical-engine"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    token = client.post("/api/v1/auth/token", data=body).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def create(client: TestClient, auth: dict[str, str], songs: list[str], **fields) -> dict:
    answer = client.post(
        "/api/v1/playlists", headers=auth, json={"name": "mix", "song_ids": songs, **fields}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def write(client: TestClient, method: str, path: str, auth: dict, version: int, **kwargs):
    headers = {**auth, "If-Match": f'"{version}"'}
    return client.request(method, f"/api/v1/playlists/{path}", headers=headers, **kwargs)


def titles(playlist: dict) -> list[str]:
    return [entry["title"] for entry in playlist["songs"]]


def stored_positions(engine: Engine, playlist_id: str) -> list[int]:
    with engine.connect() as connection:
        return list(
            connection.scalars(
                select(playlist_songs.c.position)
                .where(playlist_songs.c.playlist_id == playlist_id)
                .order_by(playlist_songs.c.position)
            )
        )


def test_the_whole_life_cycle(client: TestClient, song_ids: dict[str, str]) -> None:
    auth = listener(client)
    answer = client.post(
        "/api/v1/playlists",
        headers=auth,
        json={"name": "Road trip", "description": "long drives", "song_ids": [song_ids["Bravo"]]},
    )
    assert answer.status_code == 201
    created = answer.json()
    playlist_id = created["playlist_id"]
    assert answer.headers["Location"] == f"/api/v1/playlists/{playlist_id}"
    assert answer.headers["ETag"] == '"1"' and created["version"] == 1
    assert created["is_public"] is False and created["song_count"] == 1

    read = client.get(f"/api/v1/playlists/{playlist_id}", headers=auth)
    assert read.status_code == 200 and read.headers["ETag"] == '"1"'
    (entry,) = read.json()["songs"]
    assert entry["position"] == 0 and entry["song_id"] == song_ids["Bravo"]
    assert entry["title"] == "Bravo" and entry["artist_name"] == "The Phonetics"
    assert entry["duration_ms"] == 2000 and entry["added_at"]

    renamed = write(
        client, "PATCH", playlist_id, auth, 1, json={"name": "Night drive", "is_public": True}
    )
    assert renamed.status_code == 200 and renamed.headers["ETag"] == '"2"'
    assert renamed.json()["name"] == "Night drive" and renamed.json()["is_public"] is True
    assert renamed.json()["description"] == "long drives"  # left out: unchanged

    added = write(
        client, "POST", f"{playlist_id}/songs", auth, 2, json={"song_ids": [song_ids["Alpha"]]}
    )
    assert added.status_code == 200 and added.headers["ETag"] == '"3"'
    assert titles(added.json()) == ["Bravo", "Alpha"]

    moved = write(
        client,
        "POST",
        f"{playlist_id}/songs/move",
        auth,
        3,
        json={"from_position": 1, "to_position": 0},
    )
    assert titles(moved.json()) == ["Alpha", "Bravo"] and moved.headers["ETag"] == '"4"'
    removed = write(client, "DELETE", f"{playlist_id}/songs/0", auth, 4)
    assert titles(removed.json()) == ["Bravo"] and removed.json()["version"] == 5

    second = create(client, auth, [])
    page = client.get("/api/v1/playlists", headers=auth, params={"limit": 1})
    assert page.status_code == 200
    assert page.json()["total"] == 2 and len(page.json()["items"]) == 1
    assert page.json()["items"][0]["playlist_id"] == second["playlist_id"]  # newest first
    rest = client.get("/api/v1/playlists", headers=auth, params={"limit": 1, "offset": 1})
    assert rest.json()["items"][0]["playlist_id"] == playlist_id
    assert rest.json()["items"][0]["song_count"] == 1

    assert write(client, "DELETE", playlist_id, auth, 5).status_code == 204
    assert write(client, "DELETE", playlist_id, auth, 5).status_code == 404  # gone already
    assert client.get(f"/api/v1/playlists/{playlist_id}", headers=auth).status_code == 404
    assert client.get("/api/v1/playlists", headers=auth).json()["total"] == 1


def test_order_stays_dense_after_adds_moves_and_removes(
    client: TestClient, engine: Engine, song_ids: dict[str, str]
) -> None:
    auth = listener(client)
    playlist = create(client, auth, [song_ids[t] for t in ["Alpha", "Bravo", "Charlie", "Delta"]])
    playlist_id, version = playlist["playlist_id"], 1
    expected = ["Alpha", "Bravo", "Charlie", "Delta"]

    def step(method: str, path: str, body: dict | None, after: list[str]) -> None:
        nonlocal version
        answer = write(client, method, f"{playlist_id}{path}", auth, version, json=body)
        assert answer.status_code == 200, (path, body, answer.text)
        version += 1
        assert answer.headers["ETag"] == f'"{version}"'
        assert titles(answer.json()) == after, (path, body)
        assert [e["position"] for e in answer.json()["songs"]] == list(range(len(after)))
        assert stored_positions(engine, playlist_id) == list(range(len(after)))

    def add(names: list[str], position: int | None, after: list[str]) -> None:
        body: dict = {"song_ids": [song_ids[name] for name in names]}
        if position is not None:
            body["position"] = position
        step("POST", "/songs", body, after)

    def move(source: int, target: int, after: list[str], count: int = 1) -> None:
        body = {"from_position": source, "to_position": target, "count": count}
        step("POST", "/songs/move", body, after)

    add(["Echo"], 0, expected := ["Echo", *expected])  # at the start
    add(["Alpha"], None, expected := [*expected, "Alpha"])  # the end; Alpha now twice
    add(["Foxtrot", "Bravo"], 2, expected := ["Echo", "Alpha", "Foxtrot", "Bravo", *expected[2:]])
    assert expected == ["Echo", "Alpha", "Foxtrot", "Bravo", "Bravo", "Charlie", "Delta", "Alpha"]
    move(
        3,
        0,
        expected := ["Bravo", "Echo", "Alpha", "Foxtrot", "Bravo", "Charlie", "Delta", "Alpha"],
    )
    move(
        0,
        7,
        expected := ["Echo", "Alpha", "Foxtrot", "Bravo", "Charlie", "Delta", "Alpha", "Bravo"],
    )
    move(4, 4, expected)  # the same place: order unchanged, version bumped
    move(
        1,
        5,
        expected := ["Echo", "Bravo", "Charlie", "Delta", "Alpha", "Alpha", "Foxtrot", "Bravo"],
        count=2,
    )
    move(
        4,
        0,
        expected := ["Alpha", "Alpha", "Echo", "Bravo", "Charlie", "Delta", "Foxtrot", "Bravo"],
        count=2,
    )
    step("DELETE", "/songs/7", None, expected := expected[:7])  # the last
    step("DELETE", "/songs/0", None, expected := expected[1:])  # the first
    step("DELETE", "/songs/2", None, expected := expected[:2] + expected[3:])  # the middle
    assert expected == ["Alpha", "Echo", "Charlie", "Delta", "Foxtrot"]

    # and a random walk against a list model of the same operations
    chooser = random.Random(9)
    for _ in range(25):
        size = len(expected)
        kind = chooser.choice(["add", "move", "remove"] if size > 1 else ["add"])
        if kind == "add":
            names = chooser.sample(TITLES, chooser.randint(1, 3))
            at = chooser.randint(0, size)
            add(names, at, expected := expected[:at] + names + expected[at:])
        elif kind == "move":
            count = chooser.randint(1, size)
            source, target = chooser.randint(0, size - count), chooser.randint(0, size - count)
            block, rest = (
                expected[source : source + count],
                expected[:source] + expected[source + count :],
            )
            move(source, target, expected := rest[:target] + block + rest[target:], count=count)
        else:
            at = chooser.randrange(size)
            step("DELETE", f"/songs/{at}", None, expected := expected[:at] + expected[at + 1 :])


def test_another_listeners_private_playlist_does_not_exist_for_you(
    client: TestClient, song_ids: dict[str, str]
) -> None:
    owner, stranger = listener(client), listener(client)
    playlist_id = create(client, owner, [song_ids["Alpha"]])["playlist_id"]
    missing = "pl-0000000000000000"
    for target in (playlist_id, missing):  # the same answer whether it exists or not
        assert client.get(f"/api/v1/playlists/{target}", headers=stranger).status_code == 404
        calls = [
            ("PATCH", target, {"name": "mine now"}),
            ("DELETE", target, None),
            ("POST", f"{target}/songs", {"song_ids": [song_ids["Bravo"]]}),
            ("POST", f"{target}/songs/move", {"from_position": 0, "to_position": 0}),
            ("DELETE", f"{target}/songs/0", None),
        ]
        for method, path, body in calls:
            answer = write(client, method, path, stranger, 1, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
            headerless = client.request(
                method, f"/api/v1/playlists/{path}", headers=stranger, json=body
            )
            assert headerless.status_code == 404, (method, path)  # 404 before 428
    read = client.get(f"/api/v1/playlists/{playlist_id}", headers=owner).json()
    assert read["version"] == 1 and titles(read) == ["Alpha"] and read["name"] == "mix"
    assert client.get("/api/v1/playlists", headers=stranger).json()["total"] == 0


def test_another_listeners_public_playlist_is_readable_but_not_writable(
    client: TestClient, platform: Settings, song_ids: dict[str, str]
) -> None:
    owner, stranger = listener(client), listener(client)
    playlist_id = create(client, owner, [song_ids["Alpha"]], is_public=True)["playlist_id"]
    read = client.get(f"/api/v1/playlists/{playlist_id}", headers=stranger)
    assert read.status_code == 200 and titles(read.json()) == ["Alpha"]
    calls = [
        ("PATCH", playlist_id, {"name": "mine now"}),
        ("DELETE", playlist_id, None),
        ("POST", f"{playlist_id}/songs", {"song_ids": [song_ids["Bravo"]]}),
        ("POST", f"{playlist_id}/songs/move", {"from_position": 0, "to_position": 0}),
        ("DELETE", f"{playlist_id}/songs/0", None),
    ]
    for method, path, body in calls:
        answer = write(client, method, path, stranger, 1, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
    assert client.get(f"/api/v1/playlists/{playlist_id}", headers=owner).json()["version"] == 1

    # the service token reads public playlists, and writes nothing on nobody's behalf
    service = {"Authorization": f"Bearer {platform.api.service_token.get_secret_value()}"}
    assert client.get(f"/api/v1/playlists/{playlist_id}", headers=service).status_code == 200
    private_id = create(client, owner, [])["playlist_id"]
    assert client.get(f"/api/v1/playlists/{private_id}", headers=service).status_code == 404
    assert client.get("/api/v1/playlists", headers=service).status_code == 403
    refused = client.post("/api/v1/playlists", headers=service, json={"name": "x"})
    assert refused.status_code == 403
    assert write(client, "PATCH", playlist_id, service, 1, json={"name": "x"}).status_code == 403


def test_stale_or_missing_if_match(client: TestClient, song_ids: dict[str, str]) -> None:
    auth = listener(client)
    playlist_id = create(client, auth, [song_ids["Alpha"]])["playlist_id"]
    assert write(client, "PATCH", playlist_id, auth, 1, json={"name": "v2"}).status_code == 200

    stale = write(
        client, "POST", f"{playlist_id}/songs", auth, 1, json={"song_ids": [song_ids["Bravo"]]}
    )
    assert stale.status_code == 412 and "version 2" in stale.json()["detail"]
    missing = client.post(
        f"/api/v1/playlists/{playlist_id}/songs",
        headers=auth,
        json={"song_ids": [song_ids["Bravo"]]},
    )
    assert missing.status_code == 428 and "If-Match" in missing.json()["detail"]
    for method, path in [("DELETE", playlist_id), ("DELETE", f"{playlist_id}/songs/0")]:
        assert write(client, method, path, auth, 7).status_code == 412
        assert client.request(method, f"/api/v1/playlists/{path}", headers=auth).status_code == 428
    for bad in ("*", '"2", "3"', '"two"', "", '"99999999999999"'):
        answer = client.patch(
            f"/api/v1/playlists/{playlist_id}", headers={**auth, "If-Match": bad}, json={}
        )
        assert answer.status_code == 422, bad
    weak = client.patch(
        f"/api/v1/playlists/{playlist_id}", headers={**auth, "If-Match": 'W/"2"'}, json={}
    )
    assert weak.status_code == 200 and weak.headers["ETag"] == '"3"'

    read = client.get(f"/api/v1/playlists/{playlist_id}", headers=auth).json()
    assert read["version"] == 3 and titles(read) == ["Alpha"] and read["name"] == "v2"


def test_bad_songs_positions_and_limits_answer_422_with_a_reason(
    client: TestClient, engine: Engine, song_ids: dict[str, str]
) -> None:
    auth = listener(client)
    playlist_id = create(client, auth, [song_ids["Alpha"], song_ids["Bravo"]])["playlist_id"]
    unknown = ["so-ffffffffffffffff", "so-eeeeeeeeeeeeeeee"]
    answer = write(
        client,
        "POST",
        f"{playlist_id}/songs",
        auth,
        1,
        json={"song_ids": [song_ids["Echo"], *unknown]},
    )
    assert answer.status_code == 422
    assert all(song in answer.json()["detail"] for song in unknown)
    assert song_ids["Echo"] not in answer.json()["detail"]
    refused_create = client.post(
        "/api/v1/playlists", headers=auth, json={"name": "x", "song_ids": unknown[:1]}
    )
    assert refused_create.status_code == 422 and unknown[0] in refused_create.json()["detail"]

    out_of_range = [
        ("POST", "/songs", {"song_ids": [song_ids["Echo"]], "position": 3}),
        ("POST", "/songs", {"song_ids": [song_ids["Echo"]], "position": -1}),
        ("POST", "/songs", {"song_ids": []}),
        ("POST", "/songs/move", {"from_position": 2, "to_position": 0}),
        ("POST", "/songs/move", {"from_position": 0, "to_position": 2}),
        ("POST", "/songs/move", {"from_position": 0, "to_position": 1, "count": 2}),
        ("DELETE", "/songs/2", None),
    ]
    for method, path, body in out_of_range:
        answer = write(client, method, f"{playlist_id}{path}", auth, 1, json=body)
        assert answer.status_code == 422, (path, body, answer.text)
    for body in ({"name": ""}, {"name": "x" * 201}, {"name": "a\x00b"}, {"owner_id": "u-1"}):
        assert client.post("/api/v1/playlists", headers=auth, json=body).status_code == 422, body
    assert write(client, "PATCH", playlist_id, auth, 1, json={"name": ""}).status_code == 422
    for body in ({"is_public": 0}, {"is_public": "true"}):  # no coercion: the schema's types
        assert write(client, "PATCH", playlist_id, auth, 1, json=body).status_code == 422, body
    as_text = {"from_position": "1", "to_position": 0}
    assert (
        write(client, "POST", f"{playlist_id}/songs/move", auth, 1, json=as_text).status_code == 422
    )
    # `move` is not a position: DELETE there is a method the path does not have
    assert write(client, "DELETE", f"{playlist_id}/songs/move", auth, 1).status_code == 405

    too_many = {"song_ids": [song_ids["Alpha"]] * (MAX_SONGS_PER_REQUEST + 1)}
    assert write(client, "POST", f"{playlist_id}/songs", auth, 1, json=too_many).status_code == 422

    # fill the playlist to one below the limit directly, then ask for two more
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO playlist_songs (playlist_id, position, song_id, added_at) "
                "SELECT :id, n, :song, now() FROM generate_series(2, :last) AS n"
            ),
            {"id": playlist_id, "song": song_ids["Charlie"], "last": MAX_SONGS_PER_PLAYLIST - 2},
        )
    two = {"song_ids": [song_ids["Delta"], song_ids["Echo"]]}
    full = write(client, "POST", f"{playlist_id}/songs", auth, 1, json=two)
    assert full.status_code == 422 and str(MAX_SONGS_PER_PLAYLIST) in full.json()["detail"]
    one = write(
        client, "POST", f"{playlist_id}/songs", auth, 1, json={"song_ids": two["song_ids"][:1]}
    )
    assert one.status_code == 200 and one.json()["song_count"] == MAX_SONGS_PER_PLAYLIST
    assert one.json()["songs"][-1]["title"] == "Delta"


def test_two_writers_with_the_same_version_exactly_one_wins(
    client: TestClient, engine: Engine, song_ids: dict[str, str]
) -> None:
    auth = listener(client)
    playlist_id = create(client, auth, [song_ids["Alpha"]])["playlist_id"]

    def add(title: str) -> int:
        body = {"song_ids": [song_ids[title]]}
        return write(client, "POST", f"{playlist_id}/songs", auth, 1, json=body).status_code

    # Hold the playlist row so both requests are in flight at once, then let them go: a
    # check-then-write without the row lock would let both see version 1 and both succeed.
    with engine.connect() as holder, ThreadPoolExecutor(2) as pool:
        transaction = holder.begin()
        holder.execute(
            select(playlists.c.version)
            .where(playlists.c.playlist_id == playlist_id)
            .with_for_update()
        )
        futures = [pool.submit(add, "Bravo"), pool.submit(add, "Charlie")]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and waiting_on_locks(engine) < 2:
            assert not any(future.done() for future in futures), "a writer ignored the row lock"
            time.sleep(0.05)
        assert waiting_on_locks(engine) == 2
        transaction.rollback()
        statuses = sorted(future.result(timeout=30) for future in futures)
    assert statuses == [200, 412]

    read = client.get(f"/api/v1/playlists/{playlist_id}", headers=auth).json()
    assert read["version"] == 2 and len(read["songs"]) == 2
    assert titles(read)[0] == "Alpha" and titles(read)[1] in {"Bravo", "Charlie"}


def waiting_on_locks(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count())
            .select_from(text("pg_stat_activity"))
            .where(text("datname = :db AND wait_event_type = 'Lock'"))
            .params(db=DATABASE)
        ).scalar_one()


def test_a_token_outliving_its_account_creates_nothing(client: TestClient, engine: Engine) -> None:
    auth = listener(client)
    user_id = client.get("/api/v1/me", headers=auth).json()["user_id"]
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM accounts WHERE user_id = :id"), {"id": user_id})
    answer = client.post("/api/v1/playlists", headers=auth, json={"name": "orphan"})
    assert answer.status_code == 404 and "account" in answer.json()["detail"]


def test_every_route_needs_a_token(client: TestClient) -> None:
    target = "/api/v1/playlists/pl-0000000000000000"
    calls = [
        ("GET", "/api/v1/playlists"),
        ("POST", "/api/v1/playlists"),
        ("GET", target),
        ("PATCH", target),
        ("DELETE", target),
        ("POST", f"{target}/songs"),
        ("POST", f"{target}/songs/move"),
        ("DELETE", f"{target}/songs/0"),
    ]
    for method, path in calls:
        answer = client.request(method, path, json={"name": "x"})
        assert answer.status_code == 401, (method, path)
        assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_openapi_documents_if_match_etag_and_errors(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    writes = [
        ("/api/v1/playlists/{playlist_id}", "patch"),
        ("/api/v1/playlists/{playlist_id}", "delete"),
        ("/api/v1/playlists/{playlist_id}/songs", "post"),
        ("/api/v1/playlists/{playlist_id}/songs/{position}", "delete"),
        ("/api/v1/playlists/{playlist_id}/songs/move", "post"),
    ]
    for path, method in writes:
        operation = paths[path][method]
        (if_match,) = [p for p in operation["parameters"] if p["in"] == "header"]
        assert if_match["name"] == "If-Match" and if_match["required"] is True, (path, method)
        assert {"401", "403", "404", "412", "422", "428"} <= set(operation["responses"])
    assert "ETag" in paths["/api/v1/playlists/{playlist_id}"]["get"]["responses"]["200"]["headers"]
    created = paths["/api/v1/playlists"]["post"]["responses"]["201"]["headers"]
    assert {"ETag", "Location"} <= set(created)
