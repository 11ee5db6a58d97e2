"""``load_catalog`` and ``encore catalog load`` against real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from encore.db import ids
from encore.errors import DatasetError
from encore.settings import DatasetSettings, Settings, settings_env
from streaming_api.catalog.hetrec import FOLDER
from streaming_api.catalog.load import load_catalog
from streaming_api.catalog.synthetic import build_catalog, synthetic_artists
from streaming_api.catalog.taxonomy import GENRES, WORLDWIDE, genre_of_tags
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration

ENCORE = str(Path(sys.executable).with_name("encore"))

HETREC_ROOT = DatasetSettings().resolve()
HAVE_HETREC = HETREC_ROOT is not None and (HETREC_ROOT / FOLDER).is_dir()

# md5 over every column of every row, timestamps included: unchanged means not rewritten
CHECKSUM = """
SELECT (SELECT count(*) FROM artists), (SELECT count(*) FROM albums), (SELECT count(*) FROM songs),
    (SELECT md5(string_agg(t::text, '|' ORDER BY artist_id)) FROM artists t),
    (SELECT md5(string_agg(t::text, '|' ORDER BY album_id)) FROM albums t),
    (SELECT md5(string_agg(t::text, '|' ORDER BY song_id)) FROM songs t)
"""


def query(settings: Settings, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        return connection.execute(sql).fetchall()


@pytest.fixture(scope="module")
def loaded(platform: Settings) -> tuple[Settings, object]:
    settings = fresh_database(platform, "catalog_load")
    return settings, load_catalog(settings, artists=300, songs_per_artist=12, seed=5)


def test_load_writes_what_it_reports_with_stable_ids(loaded) -> None:  # type: ignore[no-untyped-def]
    settings, report = loaded
    artists, albums, songs = query(settings, CHECKSUM)[0][:3]
    assert (artists, albums, songs) == (
        report.artists.inserted,
        report.albums.inserted,
        report.songs.inserted,
    )
    assert artists == 300 and 2_800 < songs < 4_400  # 12 songs per artist on average
    (name, artist_id), *_ = query(settings, "SELECT name, artist_id FROM artists LIMIT 1")
    assert artist_id == ids.artist_id(name)
    for album, artist, title in query(
        settings,
        "SELECT album_id, artist_id, title FROM albums",
    ):
        assert album == ids.album_id(artist, title)
    rows = query(settings, "SELECT song_id, album_id, title FROM songs")
    assert all(song == ids.song_id(album, title) for song, album, title in rows)
    sizes = [n for (n,) in query(settings, "SELECT count(*) FROM songs GROUP BY album_id")]
    assert min(sizes) >= 8 and max(sizes) <= 14


def test_a_second_load_changes_nothing(loaded) -> None:  # type: ignore[no-untyped-def]
    settings, _ = loaded
    before = query(settings, CHECKSUM)
    again = load_catalog(settings, artists=300, songs_per_artist=12, seed=5)
    assert query(settings, CHECKSUM) == before
    assert again.songs.inserted == again.songs.updated == 0
    assert again.songs.unchanged == before[0][2]


def test_a_reload_keeps_what_content_ingestion_owns(platform: Settings) -> None:
    settings = fresh_database(platform, "catalog_reload_media")
    load_catalog(settings, artists=20, songs_per_artist=5, seed=8)
    import psycopg

    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        song_id, generated = connection.execute(
            "UPDATE songs SET hls_manifest = 'songs/x/master.m3u8', duration_ms = 4000"
            " WHERE song_id = (SELECT min(song_id) FROM songs) RETURNING song_id, duration_ms"
        ).fetchone()
    assert generated == 4000
    again = load_catalog(settings, artists=20, songs_per_artist=5, seed=8)
    assert again.songs.updated == 0  # not "updated" back on every reload
    manifest, duration = query(
        settings, f"SELECT hls_manifest, duration_ms FROM songs WHERE song_id = '{song_id}'"
    )[0]
    assert (manifest, duration) == ("songs/x/master.m3u8", 4000)


def test_songs_look_real(loaded) -> None:  # type: ignore[no-untyped-def]
    settings, _ = loaded
    genres = {g for (g,) in query(settings, "SELECT DISTINCT genre FROM songs")}
    assert genres <= set(GENRES) and len(genres) > 15
    (median_pop, rock, classical), *_ = query(
        settings,
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms), "
        "avg(duration_ms) FILTER (WHERE genre = 'punk'), "
        "avg(duration_ms) FILTER (WHERE genre = 'classical') FROM songs",
    )
    assert 150_000 < median_pop < 330_000 and rock < classical
    (restricted, worldwide, explicit, lyrics, no_date), *_ = query(
        settings,
        f"SELECT avg((cardinality(territories) < 5)::int), "
        f"avg((cardinality(territories) = {len(WORLDWIDE)})::int), avg(explicit::int), "
        "avg((lyrics_url IS NOT NULL)::int), count(*) FILTER (WHERE release_date IS NULL) "
        "FROM songs",
    )
    assert 0.03 < restricted < 0.2 and worldwide > 0.8
    assert 0.02 < explicit < 0.3 and lyrics > 0.8 and no_date == 0
    assert query(settings, "SELECT count(*) FROM artists WHERE bio IS NULL OR image_url IS NULL")[
        0
    ] == (0,)


def test_popularity_is_skewed(loaded) -> None:  # type: ignore[no-untyped-def]
    settings, _ = loaded
    popularity = sorted(
        (p for (p,) in query(settings, "SELECT popularity FROM songs")), reverse=True
    )
    top = sum(popularity[: len(popularity) // 10]) / sum(popularity)
    assert top > 0.6, f"top 10% of songs hold only {top:.0%} of popularity"


def test_names_are_unique_and_plausible() -> None:
    artists = synthetic_artists(20_000, seed=1)
    assert len({a.name.casefold() for a in artists}) == 20_000
    assert all(a.name.strip() == a.name and len(a.name) >= 3 for a in artists)
    assert synthetic_artists(50, seed=1) != synthetic_artists(50, seed=2)
    first = next(build_catalog(artists[:20], 12, seed=1))
    assert first.songs == next(build_catalog(artists[:20], 12, seed=1)).songs


def test_tags_map_to_the_taxonomy() -> None:
    assert genre_of_tags([("seen live", 50), ("Death Metal", 10), ("metal", 5)]) == "death metal"
    assert genre_of_tags([("hip hop", 3), ("rock", 1)]) == "hip-hop"
    assert genre_of_tags([("seen live", 9), ("favorites", 3)]) is None


@pytest.mark.skipif(not HAVE_HETREC, reason=f"the HetRec folder {FOLDER}/ is not here")
def test_hetrec_source_takes_real_artists_and_their_tags(platform: Settings) -> None:
    settings = fresh_database(platform, "catalog_hetrec")
    report = load_catalog(
        settings, source="hetrec-lastfm-2k", artists=150, songs_per_artist=8, seed=1
    )
    assert report.artists.inserted == 150
    genres = dict(
        query(
            settings,
            "SELECT name, min(genre) FROM artists JOIN songs USING (artist_id) GROUP BY name",
        )
    )
    # the most listened HetRec artists, tagged as they are on Last.fm
    assert "Britney Spears" in genres and "Lady Gaga" in genres
    assert GENRES[genres["Lady Gaga"]].name in ("pop", "dance", "synth-pop")
    assert len(set(genres.values())) > 8


def encore(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ENCORE, *args],
        env={**os.environ, **settings_env(settings), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_missing_hetrec_folder_is_one_line_and_exit_1(platform: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = platform.model_copy(update={"datasets": DatasetSettings(root=str(tmp_path))})
    done = encore(settings, "catalog", "load", "--source", "hetrec-lastfm-2k")
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and FOLDER in lines[0], done.stderr


def test_hetrec_folder_missing_is_a_dataset_error(platform: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = platform.model_copy(update={"datasets": DatasetSettings(root=str(tmp_path))})
    with pytest.raises(DatasetError, match=FOLDER):
        load_catalog(settings, source="hetrec-lastfm-2k")


def test_cli_loads_a_small_catalog(platform: Settings) -> None:
    settings = fresh_database(platform, "catalog_cli")
    done = encore(settings, "catalog", "load", "--artists", "20", "--songs-per-artist", "9")
    assert done.returncode == 0, done.stderr
    assert "songs" in done.stdout
    assert query(settings, "SELECT count(*) FROM artists") == [(20,)]
