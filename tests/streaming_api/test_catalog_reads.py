"""Catalog reads (songs, artists, albums) and artist top songs, against real PostgreSQL.

The rows are hand-made here with ``encore.db.ids`` in a database of this module's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlalchemy.engine import Connection

from encore.db import create_engine, ids
from encore.db.schema import albums, artist_top_songs, artists, songs
from encore.settings import Settings
from streaming_api.app import create_app
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def add_artist(connection: Connection, name: str, popularity: float = 0.0, **fields) -> str:
    artist = ids.artist_id(name)
    connection.execute(
        insert(artists).values(
            artist_id=artist,
            name=name,
            popularity=popularity,
            created_at=NOW,
            updated_at=NOW,
            **fields,
        )
    )
    return artist


def add_album(connection: Connection, artist: str, title: str, **fields) -> str:
    album = ids.album_id(artist, title)
    connection.execute(
        insert(albums).values(
            album_id=album,
            artist_id=artist,
            title=title,
            created_at=NOW,
            updated_at=NOW,
            **fields,
        )
    )
    return album


def add_song(connection: Connection, artist: str, album: str, title: str, **fields) -> str:
    song = ids.song_id(album, title)
    values = {"genre": "rock", "duration_ms": 180_000, "territories": ["GB", "US"], **fields}
    connection.execute(
        insert(songs).values(
            song_id=song,
            title=title,
            artist_id=artist,
            album_id=album,
            created_at=NOW,
            updated_at=NOW,
            **values,
        )
    )
    return song


@pytest.fixture(scope="module")
def catalog(platform: Settings) -> Iterator[tuple[Settings, dict[str, str]]]:
    settings = fresh_database(platform, "catalog_reads")
    engine = create_engine(settings)
    with engine.begin() as connection:
        beatles = add_artist(connection, "The Beatles", bio="From Liverpool.")
        abbey = add_album(connection, beatles, "Abbey Road", release_year=1969)
        please = add_album(connection, beatles, "Please Please Me", release_year=1963)
        # inserted out of track order: the album must list them by track_number
        something = add_song(connection, beatles, abbey, "Something", track_number=2)
        come = add_song(
            connection,
            beatles,
            abbey,
            "Come Together",
            track_number=1,
            popularity=0.4,
            release_date=date(1969, 9, 26),
            lyrics_url="https://lyrics.example/come-together",
            hls_manifest="media/so/come/master.m3u8",
        )
        sun = add_song(
            connection, beatles, abbey, "Here Comes the Sun", track_number=7, popularity=0.9
        )
        add_song(connection, beatles, please, "Twist and Shout", explicit=False)
        quiet = add_artist(connection, "Nobody Plays Me")
    engine.dispose()
    yield (
        settings,
        {
            "beatles": beatles,
            "abbey": abbey,
            "please": please,
            "come": come,
            "something": something,
            "sun": sun,
            "quiet": quiet,
        },
    )


@pytest.fixture(scope="module")
def client(catalog: tuple[Settings, dict[str, str]]) -> Iterator[TestClient]:
    settings, _ = catalog
    auth = {"Authorization": f"Bearer {settings.api.service_token.get_secret_value()}"}
    with TestClient(create_app(settings), headers=auth) as test_client:
        yield test_client


def test_a_song_has_what_a_client_needs_and_no_media_paths(client, catalog) -> None:
    _, known = catalog
    song = client.get(f"/api/v1/songs/{known['come']}").json()
    assert song == {
        "id": known["come"],
        "title": "Come Together",
        "artist": {"id": known["beatles"], "name": "The Beatles"},
        "album": {"id": known["abbey"], "title": "Abbey Road"},
        "track_number": 1,
        "genre": "rock",
        "duration_ms": 180_000,
        "release_date": "1969-09-26",
        "explicit": False,
        "territories": ["GB", "US"],
        "lyrics_url": "https://lyrics.example/come-together",
        "popularity": 0.4,
        "stream_available": True,
    }
    assert client.get(f"/api/v1/songs/{known['something']}").json()["stream_available"] is False


def test_an_artist_lists_albums_oldest_first_and_an_album_its_songs_in_track_order(
    client, catalog
) -> None:
    _, known = catalog
    artist = client.get(f"/api/v1/artists/{known['beatles']}").json()
    assert artist["name"] == "The Beatles" and artist["bio"] == "From Liverpool."
    assert [album["title"] for album in artist["albums"]] == ["Please Please Me", "Abbey Road"]
    assert artist["albums"][1] == {
        "id": known["abbey"],
        "title": "Abbey Road",
        "release_year": 1969,
        "cover_art_url": None,
    }
    album = client.get(f"/api/v1/albums/{known['abbey']}").json()
    assert album["artist"] == {"id": known["beatles"], "name": "The Beatles"}
    assert [(track["track_number"], track["title"]) for track in album["songs"]] == [
        (1, "Come Together"),
        (2, "Something"),
        (7, "Here Comes the Sun"),
    ]
    assert [track["stream_available"] for track in album["songs"]] == [True, False, False]


@pytest.mark.parametrize("kind", ["songs", "artists", "albums", "artists/{}/top-songs"])
def test_unknown_and_malformed_ids_are_404s_or_422s_never_500s(client, kind: str) -> None:
    path = kind if "{}" in kind else kind + "/{}"
    for unknown in ("so-0000000000000000", "ar-0000000000000000", "al-0000000000000000", "x"):
        answer = client.get(f"/api/v1/{path.format(unknown)}")
        assert answer.status_code == 404, unknown
        assert unknown in answer.json()["detail"]
    for hostile in ("so-%00", "%01%02", "ar-%E2%80%8Bnull", "'; drop table songs; --"):
        assert client.get(f"/api/v1/{path.format(hostile)}").status_code == 404, hostile
    too_long = client.get(f"/api/v1/{path.format('so-' + 'a' * 100)}")
    assert too_long.status_code == 422


def test_catalog_reads_need_a_token(catalog) -> None:
    settings, known = catalog
    with TestClient(create_app(settings)) as anonymous:
        assert anonymous.get(f"/api/v1/songs/{known['come']}").status_code == 401


def test_top_songs_come_from_the_catalog_until_plays_are_published(client, catalog) -> None:
    settings, known = catalog
    path = f"/api/v1/artists/{known['beatles']}/top-songs"
    from_catalog = client.get(path, params={"limit": 2}).json()
    assert from_catalog["source"] == "catalog"
    assert from_catalog["window_days"] is None and from_catalog["computed_at"] is None
    assert [(song["rank"], song["title"], song["plays"]) for song in from_catalog["songs"]] == [
        (1, "Here Comes the Sun", None),
        (2, "Come Together", None),
    ]
    nobody = client.get(f"/api/v1/artists/{known['quiet']}/top-songs").json()
    assert nobody["source"] == "catalog" and nobody["songs"] == []

    computed_at = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    engine = create_engine(settings)
    with engine.begin() as connection:
        connection.execute(
            insert(artist_top_songs),
            [
                {"song_id": song, "rank": rank, "plays": plays}
                | {"artist_id": known["beatles"], "window_days": 28, "computed_at": computed_at}
                for song, rank, plays in [
                    (known["something"], 1, 5000),
                    (known["come"], 2, 4200),
                    (ids.song_id(known["abbey"], "Deleted Since"), 3, 100),
                ]
            ],
        )
    engine.dispose()
    from_plays = client.get(path).json()
    assert from_plays["source"] == "plays" and from_plays["window_days"] == 28
    assert datetime.fromisoformat(from_plays["computed_at"]) == computed_at
    # the song no longer in the catalog is left out
    assert [(song["rank"], song["title"], song["plays"]) for song in from_plays["songs"]] == [
        (1, "Something", 5000),
        (2, "Come Together", 4200),
    ]
    assert from_plays["songs"][1]["album"] == {"id": known["abbey"], "title": "Abbey Road"}
    assert len(client.get(path, params={"limit": 1}).json()["songs"]) == 1
    assert client.get(path, params={"limit": 0}).status_code == 422


def test_top_songs_openapi_text_says_where_counts_come_from(client) -> None:
    operation = client.get("/openapi.json").json()["paths"][
        "/api/v1/artists/{artist_id}/top-songs"
    ]["get"]
    assert "artist_top_songs" in operation["description"]
    assert "popularity" in operation["description"]
    assert {"401", "404", "422", "503"} <= set(operation["responses"])


def test_postgresql_down_is_a_503_naming_it(catalog) -> None:
    settings, known = catalog
    dead = settings.model_copy(
        update={"postgres": settings.postgres.model_copy(update={"dsn": "", "port": 1})}
    )
    auth = {"Authorization": f"Bearer {settings.api.service_token.get_secret_value()}"}
    with TestClient(create_app(dead), headers=auth) as down:
        answer = down.get(f"/api/v1/songs/{known['come']}")
        assert answer.status_code == 503 and "PostgreSQL" in answer.json()["detail"]
        assert down.get("/api/v1/search", params={"q": "come"}).status_code == 503
