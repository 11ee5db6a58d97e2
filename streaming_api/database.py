"""The API's connections to PostgreSQL: reads in autocommit, and outages as 503s.

Every store of the API (accounts, catalog, search, playlists, streaming) turns a database
that does not answer into ``UnavailableError`` here, logging the cause (which may name the
host and user) and telling the client only to retry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from streaming_api.errors import UnavailableError

log = logging.getLogger(__name__)


def unavailable(error: OperationalError) -> UnavailableError:
    """The 503 for a database that did not answer; the cause goes to the log only."""
    log.warning("PostgreSQL is unreachable: %s", error.orig)
    return UnavailableError("PostgreSQL is unreachable; retry later")


@contextmanager
def database_errors() -> Iterator[None]:
    """PostgreSQL not answering becomes ``UnavailableError`` (503)."""
    try:
        yield
    except OperationalError as error:
        raise unavailable(error) from None


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads, in autocommit: no BEGIN and ROLLBACK round trips around them.

    Raises:
        UnavailableError: PostgreSQL did not answer.
    """
    with database_errors(), engine.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")
