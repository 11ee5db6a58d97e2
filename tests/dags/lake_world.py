"""A small, realistic world for the DAG tests: a catalog in a PostgreSQL database of its own
and simulated play events in a lake of its own, as the platform would hold them.

:func:`build_lake_world` loads a synthetic catalog (``encore catalog load``'s loader: 10
artists x 3 songs), registers the simulated listeners as accounts (so ``dims.users`` knows
them), and writes the simulator's v1 play events for the given days straight into
``bronze.play_events`` with delta-rs, as the Flink ingestion job would: the registry's
schema and partitioning, one Kafka partition with increasing offsets, ``ingested_at`` a few
seconds after each play ended, small commits in the order the plays ended. Deterministic:
the same arguments give the same rows. Nothing is built: the lake holds bronze only, ready
for ``lake_daily``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from encore.events import PlayEventV1
from encore.settings import Settings
from encore.tables import PLAY_EVENTS
from pipelines.simulation.listening import generate_events
from pipelines.simulation.population import SimulationConfig, build_population, read_catalog
from streaming_api.catalog.load import load_catalog
from tests.conftest import fresh_database

ARTISTS, SONGS_PER_ARTIST, USERS = 10, 3, 30
SEED = 13
INGEST_DELAY = timedelta(seconds=5)
"""How long after a play ended the stream committed it to bronze."""
ROWS_PER_COMMIT = 100
"""Bronze is written in commits of this many rows, as the stream appends small files (so
``encore lake maintain`` has files to compact)."""
ACCOUNTS_CREATED = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LakeWorld:
    settings: Settings
    """The platform's settings on the world's own database and lake root."""
    days: list[date]
    """The days bronze holds, oldest first."""
    events: int
    """Rows written to ``bronze.play_events``."""


def build_lake_world(
    platform: Settings,
    lake_root: Path,
    days: list[date],
    *,
    database: str = "lake_world",
    users: int = USERS,
    seed: int = SEED,
    variant_of: Callable[[dict], str | None] | None = None,
) -> LakeWorld:
    """Catalog, accounts and ``days`` of bronze play events (a few hundred a day) on a
    fresh database ``database`` (dropped first if a previous run left it) and a lake at
    ``lake_root``; returns the settings pointing at both.

    ``days`` must be consecutive: they are simulated as one span, so a session running past
    midnight continues into the next day as it would in life. ``variant_of``, when given,
    names each bronze row's A/B variant (the app records the model alias that recommended a
    song; ``None``: not a recommended song).
    """
    days = sorted(days)
    assert days == [days[0] + timedelta(n) for n in range(len(days))], "consecutive days only"
    settings = fresh_database(platform, database)
    settings = settings.model_copy(
        update={"lake": settings.lake.model_copy(update={"root": str(lake_root)})}
    )
    load_catalog(settings, artists=ARTISTS, songs_per_artist=SONGS_PER_ARTIST, seed=seed)
    config = SimulationConfig(
        seed=seed,
        start=datetime.combine(days[0], datetime.min.time(), tzinfo=UTC),
        duration=timedelta(days=len(days)),
        users=users,
    )
    catalog = read_catalog(settings)
    register_accounts(settings, build_population(config, catalog))
    rows = bronze_rows(generate_events(config, catalog))
    if variant_of:
        for row in rows:
            row["variant"] = variant_of(row)
    for first in range(0, len(rows), ROWS_PER_COMMIT):
        write_bronze(settings, rows[first : first + ROWS_PER_COMMIT])
    return LakeWorld(settings, days, len(rows))


def register_accounts(settings: Settings, listeners: list) -> None:
    """One ``accounts`` row per simulated listener, with the listener's country."""
    import psycopg

    with (
        psycopg.connect(settings.postgres.effective_dsn, autocommit=True) as connection,
        connection.cursor() as cursor,
    ):
        cursor.executemany(
            "INSERT INTO accounts (user_id, username, password_hash, created_at, email, "
            "country, subscription_plan, allow_explicit) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    listener.user_id,
                    f"listener-{listener.user_id}",
                    "scrypt$not-a-real-hash",
                    ACCOUNTS_CREATED,
                    f"{listener.user_id}@mail.example",
                    listener.country,
                    "premium" if i % 3 == 0 else "free",
                    listener.allow_explicit,
                )
                for i, listener in enumerate(listeners)
            ],
        )


def bronze_rows(records) -> list[dict]:
    """The bronze rows the ingestion job makes of the simulator's records (validated by the
    event contract, as the job does)."""
    rows = []
    for offset, record in enumerate(records):
        event = PlayEventV1.model_validate(record)
        rows.append(
            {
                **event.model_dump(),
                "event_id": str(event.event_id),
                "event_date": event.start_time.date(),
                "kafka_partition": 0,
                "kafka_offset": offset,
                "ingested_at": event.end_time + INGEST_DELAY,
            }
        )
    return rows


def write_bronze(settings: Settings, rows: list[dict], mode: str = "append") -> None:
    """Append ``rows`` to ``bronze.play_events`` with the registry's schema and partitions
    (a test writes a bad row the same way)."""
    schema = PLAY_EVENTS.arrow_schema()
    write_deltalake(
        PLAY_EVENTS.path(settings),
        pa.Table.from_pylist([{c: row.get(c) for c in schema.names} for row in rows], schema),
        mode=mode,
        partition_by=list(PLAY_EVENTS.partition_by),
        storage_options=settings.lake.storage_options or None,
    )
