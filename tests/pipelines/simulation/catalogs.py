"""In-memory catalogs for the simulator's unit tests: the loader's synthetic rows, no database."""

from __future__ import annotations

import functools

from pipelines.simulation import Catalog, CatalogSong
from streaming_api.catalog.synthetic import build_catalog, synthetic_artists


@functools.cache
def synthetic_catalog(artists: int = 300, songs_per_artist: int = 10, seed: int = 1) -> Catalog:
    """The catalog ``load_catalog(settings, artists=..., ...)`` would write, as the simulator
    reads it back."""
    songs = [
        CatalogSong(
            song_id=row[0],
            artist_id=row[2],
            genre=row[5],
            duration_ms=row[6],
            territories=row[10].strip("{}").split(","),
            popularity=row[11],
            explicit=row[9],
        )
        for batch in build_catalog(synthetic_artists(artists, seed), songs_per_artist, seed)
        for row in batch.songs
    ]
    return Catalog(sorted(songs, key=lambda song: song.song_id))
