"""The listener API's steps of ``encore demo``: the catalog with real media, then a listener.

``catalog_step`` (before the play-event step, whose simulator draws from the catalog):
migrates the database, loads the default synthetic catalog, generates a handful of masters
tagged as popular catalog songs and ingests them (AAC HLS ladder, AES-128). ``listener_step``
walks a new listener through the API as an app would: register, search with a typo, open a
song, get its stream and decode it with ffmpeg, make a playlist and reorder it, post plays.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from pathlib import Path

from rich.console import Console

from encore import services
from encore.errors import EncoreError
from encore.settings import Settings

console = Console(stderr=True)

DEMO_MASTERS = 4
MASTER_SECONDS = 20
LISTENER_COUNTRY = "US"


def _report(message: str) -> None:
    console.print(f"  {message}", highlight=False)


def _streamable_songs(settings: Settings, country: str, count: int) -> list[tuple[str, str]]:
    """(song id, artist name) of the most popular songs with media licensed in ``country``."""
    import psycopg

    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        return connection.execute(
            "SELECT s.song_id, ar.name FROM songs s JOIN artists ar USING (artist_id)"
            " WHERE s.hls_manifest IS NOT NULL AND %s = ANY(s.territories)"
            " ORDER BY s.popularity DESC, s.song_id LIMIT %s",
            (country, count),
        ).fetchall()


def catalog_step(settings: Settings) -> None:
    from encore.db import migrate
    from streaming_api.catalog.load import load_catalog
    from streaming_api.media.ingest import ingest_folder
    from streaming_api.media.samples import write_catalog_masters

    _, revision = migrate.upgrade(settings)
    report = load_catalog(settings)
    _report(
        f"database at revision {revision}; catalog: {report.artists.rows:,} artists, "
        f"{report.albums.rows:,} albums, {report.songs.rows:,} songs "
        f"({report.songs.inserted:,} new) in {report.elapsed_s:.1f} s"
    )
    started = time.monotonic()
    ladder = "/".join(str(kbps) for kbps in settings.media.ladder_kbps)
    missing = DEMO_MASTERS - _songs_with_media(settings)
    if missing <= 0:  # a second demo on the same home: nothing new to ingest
        _report(f"content: {DEMO_MASTERS}+ songs already have AAC HLS {ladder} kbps media")
        return
    with tempfile.TemporaryDirectory(prefix="encore-masters-") as folder:
        # tagged as the most popular songs without media: ingestion links them by their tags
        write_catalog_masters(settings, Path(folder), missing, MASTER_SECONDS)
        outcome = ingest_folder(settings, Path(folder))
    _report(
        f"content: {missing} generated FLAC/WAV masters -> AAC HLS {ladder} kbps, AES-128, "
        f"{len(outcome.with_status('ingested'))} ingested, {len(outcome.failed)} failed, "
        f"in {time.monotonic() - started:.1f} s"
    )
    for failed in outcome.failed:
        _report(f"[red]failed[/red] {failed.master.name}: {failed.reason}")


def _songs_with_media(settings: Settings) -> int:
    import psycopg

    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        return connection.execute("SELECT count(*) FROM song_media").fetchone()[0]


def _typo(text: str, rng: random.Random) -> str:
    """``text`` with one letter of its longest word dropped (the commonest typing slip)."""
    word = max(text.split(), key=len)
    if len(word) < 4:
        return text
    at = rng.randrange(1, len(word) - 1)
    return text.replace(word, word[:at] + word[at + 1 :], 1)


def _restricted_song(settings: Settings, country: str) -> tuple[str, list[str]] | None:
    """A song with media that is not licensed in ``country``, with its territories."""
    import psycopg

    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        return connection.execute(
            "SELECT song_id, territories FROM songs"
            " WHERE hls_manifest IS NOT NULL AND NOT %s = ANY(territories)"
            " ORDER BY popularity DESC, song_id LIMIT 1",
            (country,),
        ).fetchone()


def _top_songs(settings: Settings, count: int) -> list[str]:
    import psycopg

    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        rows = connection.execute(
            "SELECT song_id FROM songs ORDER BY popularity DESC, song_id LIMIT %s", (count,)
        ).fetchall()
    return [row[0] for row in rows]


def listener_step(settings: Settings) -> None:
    import httpx

    from streaming_api.media.samples import decoded_seconds

    rng = random.Random(7)
    streamable = _streamable_songs(settings, LISTENER_COUNTRY, 1)
    if not streamable:
        raise EncoreError(f"no song with media is licensed in {LISTENER_COUNTRY}")
    song_id, artist = streamable[0]
    songs = _top_songs(settings, DEMO_MASTERS)
    with services.running(settings, "api", env={"ENCORE_DEVELOPMENT": "true"}) as api:
        base = api.address(settings)
        client = httpx.Client(base_url=base, timeout=30)
        username = f"demo-{uuid.uuid4().hex[:6]}"
        password = "listen-to-encore"
        client.post(
            "/api/v1/auth/register",
            json={"username": username, "password": password, "country": LISTENER_COUNTRY},
        ).raise_for_status()
        token = client.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        ).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"

        query = _typo(artist, rng)
        hits = client.get("/api/v1/search", params={"q": query, "type": "artist"}).json()
        found = [hit["name"] for hit in hits["artists"]["hits"][:1]]
        _report(f"search {query!r} (a typo of {artist!r}) -> {found}")

        song = client.get(f"/api/v1/songs/{song_id}").json()
        stream = client.get(f"/api/v1/songs/{song_id}/stream")
        stream.raise_for_status()
        code, seconds, errors = decoded_seconds(stream.json()["master_url"])
        if code != 0 or seconds is None:
            raise EncoreError(f"ffmpeg could not play the stream: {errors.strip()[-300:]}")
        _report(
            f"{song['title']!r} by {song['artist']['name']}: stream URL signed for {username}, "
            f"ffmpeg decoded {seconds:.1f} s of audio"
        )
        restricted = _restricted_song(settings, LISTENER_COUNTRY)
        if restricted:
            refused = client.get(f"/api/v1/songs/{restricted[0]}/stream")
            _report(
                f"a song licensed only in {','.join(restricted[1])}: {refused.status_code} "
                f"{refused.json()['detail']!r}"
            )

        created = client.post("/api/v1/playlists", json={"name": "Demo mix", "song_ids": songs})
        created.raise_for_status()
        playlist = created.json()
        moved = client.post(
            f"/api/v1/playlists/{playlist['playlist_id']}/songs/move",
            json={"from_position": len(songs) - 1, "to_position": 0},
            headers={"If-Match": created.headers["ETag"]},
        )
        moved.raise_for_status()
        stale = client.post(
            f"/api/v1/playlists/{playlist['playlist_id']}/songs/move",
            json={"from_position": 0, "to_position": 1},
            headers={"If-Match": created.headers["ETag"]},
        )
        order = [entry["title"] for entry in moved.json()["songs"]]
        _report(
            f"playlist 'Demo mix': {len(order)} songs, last moved first -> {order[0]!r} leads; "
            f"an edit with the old version answers {stale.status_code}"
        )
        plays = client.post("/api/v1/playback-events", json={"events": _plays(token, songs)})
        _report(f"posted {len(songs)} plays of those songs -> {plays.status_code}")


def _plays(token: dict, songs: list[str]) -> list[dict]:
    from datetime import UTC, datetime, timedelta

    start = datetime.now(UTC) - timedelta(minutes=30)
    events = []
    for index, song_id in enumerate(songs):
        begin = start + timedelta(minutes=4 * index)
        events.append(
            {
                "event_id": str(uuid.uuid4()),
                "user_id": token["user_id"],
                "song_id": song_id,
                "event_type": "complete",
                "start_time": begin.isoformat(),
                "end_time": (begin + timedelta(seconds=MASTER_SECONDS)).isoformat(),
                "ms_played": MASTER_SECONDS * 1000,
                "device_type": "mobile",
                "country_code": LISTENER_COUNTRY,
            }
        )
    return events
