"""Listeners' privacy requests, queued in PostgreSQL and processed within a deadline.

Input: ``privacy_requests`` (``encore.db.schema``; rows and queueing in
``encore.db.privacy_requests``), filled by ``encore privacy request erase|export --user U`` or
by the listener (``POST /api/v1/me/privacy-requests``). A request is due
``lake.privacy_deadline_hours`` after it arrives; queueing a second request of the same kind
for the same listener while one is open returns the open one.

Processing (``encore privacy process``, hourly by the ``privacy_requests`` DAG) takes open
requests oldest-due first, each in a transaction of its own that holds the row with
``SELECT ... FOR UPDATE SKIP LOCKED``: two processors never take the same request, and a
processor that dies mid-way leaves it open (its transaction rolls back) for the next run,
which redoes it (erasure and export are idempotent). Each request is fulfilled with
:mod:`pipelines.lake.privacy`: an erasure with ``forget`` (its ``ops.erasures`` row carries
the request's id), an export with ``export``, written to
``<home>/privacy/exports/<request id>.json``, mode 0600. A request that fails is marked
``failed`` with the reason (the listener's id masked) and stays open: the next run retries it;
the others go on. Once an erasure is done, the listener's id is replaced by the erasure log's
keyed pseudonym in every finished request of theirs and their earlier export files are
deleted: the queue must not keep what the erasure removed.

Output: each request's status, attempts, result summary (counts, never rows), and a
:class:`ProcessReport` that is not ``ok`` when a request failed, finished after its due time,
or is still open past it.

Nothing here logs or returns a listener's id except the open request itself (the processor
needs it); lines and logs name requests by id.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from encore.db import create_engine, migrate
from encore.db.privacy_requests import (
    DUE_ORDER,
    PrivacyRequest,
    duration,
    get_request,
    open_requests,
    queue_request,
    utc_now,
)
from encore.db.schema import PRIVACY_REQUEST_OPEN, privacy_requests
from encore.errors import ServiceError
from encore.settings import Settings

# the queue's rows and queueing live in encore (the listener API queues too); one import
# here for the commands and tests
__all__ = [
    "PrivacyRequest",
    "ProcessReport",
    "claim_next",
    "connect",
    "duration",
    "export_file",
    "get_request",
    "open_requests",
    "process_requests",
    "queue_request",
    "utc_now",
    "write_private",
]

log = logging.getLogger(__name__)

REASON_MAX_CHARS = 2000
MASK = "<listener>"
"""Stands for the listener's id in a stored failure reason."""

Clock = Callable[[], datetime]


@dataclass
class ProcessReport:
    """What one ``process`` run did, and what is late."""

    checked_at: datetime
    processed: list[PrivacyRequest] = field(default_factory=list)
    """The requests this run took, as they ended (done or failed)."""
    overdue: list[PrivacyRequest] = field(default_factory=list)
    """Open requests past their due time that this run did not take (beyond ``limit``, held
    by another processor)."""

    @property
    def failed(self) -> list[PrivacyRequest]:
        return [r for r in self.processed if r.status == "failed"]

    @property
    def late(self) -> list[PrivacyRequest]:
        """Processed requests finished (or failed) after their due time, then the overdue."""
        late = [r for r in self.processed if r.late_by(self.checked_at) is not None]
        return late + self.overdue

    @property
    def ok(self) -> bool:
        return not self.failed and not self.late

    def lines(self) -> list[str]:
        requests = self.processed + self.overdue
        return [r.describe(self.checked_at) for r in requests]


def export_file(settings: Settings, request_id: str) -> Path:
    """Where an export request's JSON is written."""
    return settings.home / "privacy" / "exports" / f"{request_id}.json"


def connect(settings: Settings) -> Engine:
    """An engine on Encore's database, refusing a schema without the queue.

    Raises:
        SchemaBehindError: the database needs ``encore db upgrade``.
        ServiceError: PostgreSQL is unreachable.
    """
    engine = create_engine(settings, pool_size=1)
    try:
        migrate.check_current(engine)
    except OperationalError as error:
        engine.dispose()
        raise ServiceError("postgres", f"unreachable: {error.orig}") from error
    except Exception:
        engine.dispose()
        raise
    return engine


def claim_next(connection: Connection, skip: Sequence[str] = ()) -> PrivacyRequest | None:
    """The open request due first that no other transaction holds, locked by
    ``connection``'s transaction until it ends (``skip``: ids not to take again)."""
    table = privacy_requests
    query = select(table).where(table.c.status.in_(PRIVACY_REQUEST_OPEN))
    if skip:
        query = query.where(table.c.request_id.not_in(list(skip)))
    query = query.order_by(*DUE_ORDER).limit(1).with_for_update(skip_locked=True)
    row = connection.execute(query).mappings().first()
    return PrivacyRequest.of(row) if row is not None else None


def process_requests(
    settings: Settings,
    engine: Engine,
    limit: int | None = None,
    *,
    on_processed: Callable[[PrivacyRequest], None] | None = None,
    clock: Clock = utc_now,
) -> ProcessReport:
    """Fulfil up to ``limit`` open requests (all when None), oldest due first, then report
    lateness. A request that fails is recorded and the next one taken; an exception other
    than the request's own (the database gone) propagates, leaving the request open.

    ``on_processed`` hears each request as it ends (a command prints it at once).
    """
    processed: list[PrivacyRequest] = []
    while limit is None or len(processed) < limit:
        with engine.begin() as connection:
            request = claim_next(connection, [r.request_id for r in processed])
            if request is None:
                break
            finished = _process(settings, connection, request, clock)
        processed.append(finished)
        if on_processed is not None:
            on_processed(finished)
    taken = {r.request_id for r in processed}
    now = clock()
    overdue = [
        r for r in open_requests(engine) if r.request_id not in taken and r.late_by(now) is not None
    ]
    report = ProcessReport(now, processed, overdue)
    for request in report.late:
        log.warning("privacy request %s is late: %s", request.request_id, request.describe(now))
    return report


def _process(
    settings: Settings, connection: Connection, request: PrivacyRequest, clock: Clock
) -> PrivacyRequest:
    """Fulfil one claimed request and record how it ended, in ``connection``'s transaction."""
    assert request.user_id is not None  # an open request names its listener (a CHECK)
    table = privacy_requests
    attempt = request.attempts + 1
    log.info("privacy request %s (%s): attempt %d", request.request_id, request.kind, attempt)
    try:
        result, export_path = _fulfil(settings, request, request.user_id)
    except Exception as error:  # one request's failure must not stop the others
        reason = _reason(error, request.user_id)
        log.warning("privacy request %s failed: %s", request.request_id, reason)
        values: dict[str, Any] = {"status": "failed", "last_error": reason}
    else:
        values = {"status": "done", "result": result, "export_path": export_path}
        values["last_error"] = None
    values |= {"attempts": attempt, "finished_at": clock()}
    row = connection.execute(
        update(table)
        .where(table.c.request_id == request.request_id)
        .values(**values)
        .returning(table)
    )
    finished = PrivacyRequest.of(row.mappings().one())
    if finished.kind == "erase" and finished.status == "done":
        _forget_in_queue(settings, connection, request.user_id)
        finished = PrivacyRequest.of(
            connection.execute(select(table).where(table.c.request_id == request.request_id))
            .mappings()
            .one()
        )
    return finished


def _fulfil(
    settings: Settings, request: PrivacyRequest, user_id: str
) -> tuple[dict[str, Any], str | None]:
    """Erase or export: (the result summary, the export's file)."""
    # the lake's libraries load when a request is processed, not when the CLI starts
    from pipelines.lake import privacy

    if request.kind == "erase":
        erasure = privacy.forget(settings, user_id, request_id=request.request_id)
        summary = {
            "rows_deleted": erasure.rows_deleted,
            "files_removed": erasure.files_removed,
            "tables_touched": erasure.tables_touched,
            "online_features_deleted": erasure.online_features_deleted,
            "recs_deleted": erasure.recs_deleted,
            "recs_unreachable": erasure.recs_unreachable,
        }
        return summary, None
    document = privacy.export(settings, user_id)
    path = export_file(settings, request.request_id)
    write_private(path, json.dumps(document, indent=2) + "\n")
    rows = {table: len(rows) for table, rows in document["tables"].items()}
    return {"rows": rows, "rows_total": sum(rows.values())}, str(path)


def _forget_in_queue(settings: Settings, connection: Connection, user_id: str) -> None:
    """After an erasure: the listener's finished requests name them by the erasure log's
    pseudonym only, and their earlier export files are deleted."""
    from pipelines.lake.privacy import subject_hmac

    table = privacy_requests
    mine = (table.c.user_id == user_id) & (table.c.status == "done")
    exports = connection.execute(
        select(table.c.request_id, table.c.export_path).where(
            mine, table.c.export_path.is_not(None)
        )
    ).all()
    for request_id, path in exports:
        Path(path).unlink(missing_ok=True)
        log.info("privacy request %s: its export file deleted by the erasure", request_id)
    connection.execute(
        update(table)
        .where(mine)
        .values(user_id=None, subject_hmac=subject_hmac(settings, user_id), export_path=None)
    )


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600 from creation, in a
    0700 folder), replacing it whole: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(text)
    os.chmod(partial, 0o600)  # a partial file left by a crash may predate the mode
    os.replace(partial, path)


def _reason(error: BaseException, user_id: str) -> str:
    text = f"{type(error).__name__}: {error}".replace(user_id, MASK)
    return text[:REASON_MAX_CHARS]
