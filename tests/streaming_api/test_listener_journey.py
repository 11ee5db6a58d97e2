"""The issue's acceptance walk: a new listener through the whole listener API.

Real PostgreSQL (a fresh, migrated database with a loaded synthetic catalog), real Kafka (a
topic of this test), real media (generated masters ingested to encrypted HLS) and a real
``encore api`` process: register, token, search with a typo, open a song, get its stream
and decode it with ffmpeg, create a playlist, add and reorder songs, read it back, post
playback events for those songs and find them on the topic.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from encore import services
from encore.settings import Settings
from streaming_api.catalog.load import load_catalog
from streaming_api.media.ingest import ingest_folder
from streaming_api.media.samples import decoded_seconds, write_catalog_masters
from tests.conftest import free_port, fresh_database
from tests.streaming_api.conftest import create_topic, with_topic
from tests.topics import read_all

pytestmark = pytest.mark.integration

MASTER_SECONDS = 4.0


def journey_settings(platform: Settings, media_root: Path) -> Settings:
    topic = f"test-journey-{uuid.uuid4().hex[:8]}"
    create_topic(platform, topic)
    settings = with_topic(fresh_database(platform, "listener_journey"), topic)
    return settings.model_copy(
        update={
            "media": settings.media.model_copy(update={"root": str(media_root)}),
            "api": settings.api.model_copy(update={"port": free_port(), "workers": 1}),
        }
    )


def dropped_letter(name: str) -> str:
    """``name`` with the middle letter of its longest word dropped: a typing slip."""
    word = max(name.split(), key=len)
    middle = len(word) // 2
    return name.replace(word, word[:middle] + word[middle + 1 :], 1)


def test_a_new_listener_walks_through_the_api(platform: Settings, tmp_path: Path) -> None:
    settings = journey_settings(platform, tmp_path / "media")
    loaded = load_catalog(settings, artists=40, songs_per_artist=6, seed=3)
    assert loaded.songs.rows > 100
    masters = write_catalog_masters(settings, tmp_path / "masters", 3, MASTER_SECONDS)
    ingested = ingest_folder(settings, tmp_path / "masters")
    assert ingested.ok and len(ingested.with_status("ingested")) == len(masters) == 3

    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        song_id, title, artist, territories = connection.execute(
            "SELECT s.song_id, s.title, a.name, s.territories FROM songs s"
            " JOIN artists a USING (artist_id) WHERE s.hls_manifest IS NOT NULL"
            " ORDER BY s.popularity DESC LIMIT 1"
        ).fetchone()
        others = [
            row[0]
            for row in connection.execute(
                "SELECT song_id FROM songs WHERE song_id <> %s ORDER BY popularity DESC LIMIT 3",
                (song_id,),
            )
        ]
    country = territories[0]  # where the song is licensed

    with services.running(
        settings, "api", instance=f"api-journey-{uuid.uuid4().hex[:6]}",
        env={"ENCORE_DEVELOPMENT": "true"},
    ) as api:  # fmt: skip
        client = httpx.Client(base_url=api.address(settings), timeout=30)

        # register and sign in
        username, password = f"newcomer-{uuid.uuid4().hex[:6]}", "first day on encore"
        registered = client.post(
            "/api/v1/auth/register",
            json={"username": username, "password": password, "country": country},
        )
        assert registered.status_code == 201, registered.text
        user_id = registered.json()["user_id"]
        token = client.post("/api/v1/auth/token", data={"username": username, "password": password})
        assert token.status_code == 200
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

        # search, with a typo in the artist's name, then for the song itself
        typo = dropped_letter(artist)
        assert typo != artist
        found = client.get("/api/v1/search", params={"q": typo, "type": "artist"})
        assert found.status_code == 200, found.text
        assert artist in [hit["name"] for hit in found.json()["artists"]["hits"]], typo
        songs = client.get("/api/v1/search", params={"q": f"{title} {artist}", "type": "song"})
        assert songs.json()["songs"]["hits"][0]["id"] == song_id

        # open the song and play it
        song = client.get(f"/api/v1/songs/{song_id}")
        assert song.status_code == 200 and song.json()["stream_available"] is True
        stream = client.get(f"/api/v1/songs/{song_id}/stream")
        assert stream.status_code == 200, stream.text
        code, seconds, errors = decoded_seconds(stream.json()["master_url"])
        assert code == 0, errors
        assert seconds is not None and abs(seconds - MASTER_SECONDS) < 0.5, seconds

        # a playlist: create, add at the start, move, read back
        created = client.post(
            "/api/v1/playlists", json={"name": "First day", "song_ids": [song_id, others[0]]}
        )
        assert created.status_code == 201, created.text
        playlist_id = created.json()["playlist_id"]
        added = client.post(
            f"/api/v1/playlists/{playlist_id}/songs",
            json={"song_ids": others[1:], "position": 0},
            headers={"If-Match": created.headers["ETag"]},
        )
        assert added.status_code == 200, added.text
        moved = client.post(
            f"/api/v1/playlists/{playlist_id}/songs/move",
            json={"from_position": 2, "to_position": 0},  # the played song back to the top
            headers={"If-Match": added.headers["ETag"]},
        )
        assert moved.status_code == 200, moved.text
        expected = [song_id, others[1], others[2], others[0]]
        read_back = client.get(f"/api/v1/playlists/{playlist_id}")
        assert [entry["song_id"] for entry in read_back.json()["songs"]] == expected
        assert [entry["position"] for entry in read_back.json()["songs"]] == [0, 1, 2, 3]

        # playback events for those songs
        start = datetime.now(UTC) - timedelta(minutes=20)
        events = [
            {
                "event_id": str(uuid.uuid4()),
                "user_id": user_id,
                "song_id": played,
                "start_time": (start + timedelta(minutes=4 * index)).isoformat(),
                "end_time": (start + timedelta(minutes=4 * index, seconds=4)).isoformat(),
                "ms_played": 4000,
                "event_type": "complete",
                "device_type": "mobile",
                "country_code": country,
            }
            for index, played in enumerate(expected)
        ]
        posted = client.post("/api/v1/playback-events", json={"events": events})
        assert posted.status_code == 202, posted.text

    on_topic = {json.loads(record.value)["event_id"]: record for record in read_all(settings)}
    for event in events:
        record = on_topic[event["event_id"]]
        assert json.loads(record.value)["song_id"] == event["song_id"]
        assert record.key.decode() == user_id
