"""A small world for the service's tests: a registered ALS champion with its FAISS index,
and the dimensions the service filters with, written to a real Delta lake.

Songs: ``item_ids`` of a synthetic dataset; artist = index // 5 (five songs each), genre from
the dataset's latent structure is not exposed, so genre = index % 6; every 7th song explicit;
every 4th licensed only in GB (the rest in US, GB and DE: the worldwide set).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa

from encore.settings import Settings
from encore.tables import DIM_SONGS, DIM_USERS, Table
from models.interactions import InteractionDataset
from models.synthetic import generate
from models.training import train

ALS = {"factors": 16, "iterations": 8, "weighting": "log"}
GENRES = ["rock", "pop", "jazz", "folk", "metal", "soul"]
WORLDWIDE = ["DE", "GB", "US"]


@dataclass(frozen=True)
class World:
    settings: Settings
    data: InteractionDataset
    songs: dict[str, dict]
    listeners: dict[str, dict]


def song_rows(item_ids: list[str], extra: list[str] = ()) -> dict[str, dict]:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    rows = {}
    for i, song_id in enumerate([*item_ids, *extra]):
        rows[song_id] = {
            "song_id": song_id,
            "title": f"Song {i}",
            "artist_id": f"artist-{i // 5}",
            "album_id": f"album-{i // 5}",
            "track_number": i % 5 + 1,
            "genre": GENRES[i % len(GENRES)],
            "duration_ms": 200_000,
            "release_date": date(2020, 1, 1),
            "explicit": i % 7 == 3,
            "territories": ["GB"] if i % 4 == 1 else list(WORLDWIDE),
            "popularity": float(1000 - i),
            "created_at": now,
            "updated_at": now,
        }
    return rows


def listener_rows(user_ids: list[str]) -> dict[str, dict]:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    return {
        user: {
            "user_id": user,
            "country": "US",
            "subscription_plan": "free",
            "allow_explicit": i % 2 == 1,
            "created_at": now,
            "updated_at": now,
        }
        for i, user in enumerate(user_ids)
    }


def write_table(settings: Settings, table: Table, rows: list[dict]) -> None:
    from deltalake import write_deltalake

    schema = table.arrow_schema()
    columns = {f.name: [row.get(f.name) for row in rows] for f in schema}
    write_deltalake(
        table.path(settings), pa.Table.from_pydict(columns, schema=schema), mode="overwrite"
    )


def serving_settings(platform: Settings, lake_root: str, **serving) -> Settings:
    name = f"test-serving-{uuid.uuid4().hex[:8]}"
    return platform.model_copy(
        update={
            "lake": platform.lake.model_copy(update={"root": lake_root}),
            "serving": platform.serving.model_copy(
                update={"model_name": name, "registry_poll_s": 1, **serving}
            ),
        }
    )


def build_world(settings: Settings, *, register: bool = True, new_songs: int = 5) -> World:
    data = generate(users=200, items=300, genres=6, tags=60, seed=11)
    if register:
        train(settings, "als", data, params=ALS, registered_name=settings.serving.model_name)
    item_ids = [str(s) for s in data.item_ids]
    songs = song_rows(item_ids, [f"new-song-{i}" for i in range(new_songs)])
    listeners = listener_rows([str(u) for u in data.user_ids])
    write_table(settings, DIM_SONGS, list(songs.values()))
    write_table(settings, DIM_USERS, list(listeners.values()))
    return World(settings, data, songs, listeners)
