"""The simulator reads its songs from the catalog in PostgreSQL (real database)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from encore.settings import DatasetSettings, Settings, settings_env
from pipelines.simulation import CatalogEmptyError, SimulationConfig, generate_events, read_catalog
from streaming_api.catalog.load import load_catalog
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration

ENCORE = str(Path(sys.executable).parent / "encore")


def test_every_play_is_a_catalog_song_licensed_in_the_listeners_country(
    platform: Settings,
) -> None:
    import psycopg

    settings = fresh_database(platform, "simulation_catalog")
    load_catalog(settings, artists=150, songs_per_artist=10, seed=3)
    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        songs = dict(connection.execute("SELECT song_id, territories FROM songs").fetchall())
        durations = dict(connection.execute("SELECT song_id, duration_ms FROM songs").fetchall())
    assert sum(len(t) < 5 for t in songs.values()) > 50  # some songs are restricted
    config = SimulationConfig(seed=1, users=800, duration=timedelta(hours=12))
    events = list(generate_events(config, settings=settings))
    assert len(events) > 2_000
    for e in events:
        assert e["song_id"] in songs and e["country_code"] in songs[e["song_id"]], e
        if e["event_type"] == "complete":
            assert e["ms_played"] == durations[e["song_id"]]
    assert len(read_catalog(settings)) == len(songs)


def test_an_empty_catalog_is_a_clear_error(platform: Settings) -> None:
    settings = fresh_database(platform, "simulation_empty_catalog")
    with pytest.raises(CatalogEmptyError, match=r"run `encore catalog load`"):
        list(generate_events(SimulationConfig(users=10), settings=settings))
    done = subprocess.run(
        [ENCORE, "simulate", "--target", "kafka", "--users", "10", "--duration", "5m"],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "no songs in the catalog: run `encore catalog load`" in done.stderr


HETREC_ROOT = DatasetSettings().resolve()


@pytest.mark.skipif(
    HETREC_ROOT is None or not (HETREC_ROOT / "hetrec2011-lastfm-2k").is_dir(),
    reason="the HetRec folder hetrec2011-lastfm-2k/ is not here",
)
def test_hetrec_listeners_play_the_hetrec_catalogs_artists(platform: Settings) -> None:
    import psycopg

    settings = fresh_database(platform, "simulation_hetrec")
    load_catalog(settings, source="hetrec-lastfm-2k", artists=200, songs_per_artist=6, seed=1)
    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        artist_of = dict(
            connection.execute(
                "SELECT song_id, name FROM songs JOIN artists USING (artist_id)"
            ).fetchall()
        )
    config = SimulationConfig(
        seed=2, dataset="hetrec-lastfm-2k", dataset_root=HETREC_ROOT, duration=timedelta(hours=6)
    )
    events = list(generate_events(config, settings=settings))
    assert len({e["user_id"] for e in events}) > 200
    assert all(e["song_id"] in artist_of for e in events)
    # the most listened HetRec artists are among the most played
    top = Counter(artist_of[e["song_id"]] for e in events).most_common(10)
    assert {"Britney Spears", "Lady Gaga", "Rihanna"} & {name for name, _ in top}, top
