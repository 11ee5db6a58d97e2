"""Upgrade Encore's database to the code's schema, and tell whether it is behind.

Alembic runs programmatically (no ``alembic.ini``): the script location is this package's
``migrations`` folder and the connection comes from the settings. ``encore db upgrade`` calls
:func:`upgrade`; the API calls :func:`check_current` at start-up and refuses to serve an old
schema with the command that fixes it.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from encore.db import create_engine
from encore.errors import ConfigurationError, ServiceError
from encore.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaBehindError(ConfigurationError):
    """The database's schema is older (or other) than the code's."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The revision the code expects."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, f"no migrations under {MIGRATIONS}"
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(settings: Settings, revision: str = "head") -> tuple[str | None, str]:
    """Bring the database to ``revision``; returns (before, after). Idempotent.

    Raises:
        ServiceError: PostgreSQL is unreachable.
    """
    engine = create_engine(settings, pool_size=1)
    try:
        with engine.begin() as connection:
            before = current_revision(connection)
            command.upgrade(_config(connection), revision)
            after = current_revision(connection)
    except OperationalError as error:
        raise ServiceError("postgres", f"cannot upgrade the database: {error.orig}") from error
    finally:
        engine.dispose()
    if before != after:
        log.info("database upgraded from %s to %s", before or "(empty)", after)
    assert after is not None
    return before, after


def check_current(engine: Engine) -> None:
    """Refuse a database whose schema is not the code's head revision.

    Raises:
        SchemaBehindError: naming both revisions and ``encore db upgrade``.
        OperationalError: PostgreSQL is unreachable (the caller decides what that means).
    """
    with engine.connect() as connection:
        current = current_revision(connection)
    head = head_revision()
    if current != head:
        raise SchemaBehindError(
            f"the database schema is at revision {current or '(none)'}, this code needs {head}: "
            "run `encore db upgrade`"
        )
