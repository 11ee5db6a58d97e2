"""Encore's PostgreSQL database: the tables (``schema``), their migrations and engines.

The database is a contract between parts like the Delta tables are: ``streaming_api`` writes
accounts, the catalog and playlists; the simulator and the lakehouse read them. Its shape is
changed only by an Alembic revision under ``migrations/versions`` (``encore db upgrade``).
"""

from __future__ import annotations

from sqlalchemy import create_engine as _create_engine
from sqlalchemy.engine import Engine

from encore.settings import Settings


def sqlalchemy_url(dsn: str) -> str:
    """``postgresql://...`` as SQLAlchemy's psycopg 3 URL."""
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


def create_engine(
    settings: Settings, pool_size: int = 5, connect_timeout_s: int = 5, pre_ping: bool = True
) -> Engine:
    """An engine on Encore's database (``settings.postgres``).

    ``pre_ping`` checks each pooled connection with a round trip before use. The API turns it
    off (a request is then one round trip): after a database restart the first request on a
    dead connection answers 503, and SQLAlchemy drops the whole stale pool at that error.
    """
    return _create_engine(
        sqlalchemy_url(settings.postgres.effective_dsn),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        connect_args={"connect_timeout": connect_timeout_s},
    )
