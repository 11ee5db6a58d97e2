"""In-memory catalogs for the simulator's unit tests: the loader's synthetic rows, no database."""

from __future__ import annotations

import functools

from pipelines.simulation import Catalog
from streaming_api.catalog.synthetic import synthetic_songs


@functools.cache
def synthetic_catalog(artists: int = 300, songs_per_artist: int = 10, seed: int = 1) -> Catalog:
    """The catalog ``load_catalog(settings, artists=..., ...)`` would write, as the simulator
    reads it back."""
    return Catalog.from_records(synthetic_songs(artists, songs_per_artist, seed))
