"""Listeners' privacy requests, queued in PostgreSQL and processed within a deadline.

Input: ``privacy_requests`` (``encore.db.schema``), filled by ``encore privacy request
erase|export --user U``. A request is due ``lake.privacy_deadline_hours`` after it arrives;
queueing a second request of the same kind for the same listener while one is open returns
the open one.

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
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import OperationalError

from encore.db import create_engine, migrate
from encore.db.schema import PRIVACY_REQUEST_KINDS, PRIVACY_REQUEST_OPEN, privacy_requests
from encore.errors import ContractError, ServiceError
from encore.settings import Settings

log = logging.getLogger(__name__)

REASON_MAX_CHARS = 2000
MASK = "<listener>"
"""Stands for the listener's id in a stored failure reason."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PrivacyRequest:
    """One row of ``privacy_requests``."""

    request_id: str
    kind: str
    user_id: str | None
    requested_at: datetime
    due_at: datetime
    status: str
    attempts: int = 0
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    export_path: str | None = None
    last_error: str | None = None

    @classmethod
    def of(cls, row: RowMapping) -> PrivacyRequest:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @property
    def is_open(self) -> bool:
        return self.status in PRIVACY_REQUEST_OPEN

    def late_by(self, now: datetime) -> timedelta | None:
        """How late it is (done after its due time, or still open past it); None if not."""
        end = self.finished_at if self.status == "done" and self.finished_at else now
        late = end - self.due_at
        return late if late > timedelta(0) else None

    def describe(self, now: datetime) -> str:
        """One line for an operator: id, kind, state, lateness; never the listener's id."""
        line = f"{self.request_id} {self.kind} {self.status}"
        if self.status == "failed":
            line += f" (attempt {self.attempts}: {self.last_error})"
        late = self.late_by(now)
        due = f"due {self.due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        if late is None:
            return f"{line}, {due}"
        when = "after" if self.status == "done" else "past"
        return f"{line}, LATE: {duration(late)} {when} its due time ({due})"


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


def duration(span: timedelta) -> str:
    """``2 d 3 h``, ``3 h 5 min``, ``12 min``, ``40 s``: coarse, for people."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


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


def queue_request(
    settings: Settings, engine: Engine, kind: str, user_id: str, now: datetime | None = None
) -> tuple[PrivacyRequest, bool]:
    """Queue ``kind`` for ``user_id``: (the request, whether it is new). An open request of
    the same kind for the same listener is returned instead of a second one.

    Raises:
        ContractError: an unknown kind, or an empty or too long user id.
    """
    if kind not in PRIVACY_REQUEST_KINDS:
        raise ContractError(
            f"privacy request kind {kind!r}: expected one of {', '.join(PRIVACY_REQUEST_KINDS)}"
        )
    longest = privacy_requests.c.user_id.type.length
    if not user_id or len(user_id) > longest:
        raise ContractError(f"privacy request: a user id of 1 to {longest} characters expected")
    requested_at = now or utc_now()
    table = privacy_requests
    statement = (
        insert(table)
        .values(
            request_id=str(uuid.uuid4()),
            kind=kind,
            user_id=user_id,
            requested_at=requested_at,
            due_at=requested_at + timedelta(hours=settings.lake.privacy_deadline_hours),
            status="pending",
        )
        # the partial unique index makes this safe against two concurrent requests
        .on_conflict_do_nothing(
            index_elements=[table.c.kind, table.c.user_id],
            index_where=table.c.status.in_(PRIVACY_REQUEST_OPEN),
        )
        .returning(table)
    )
    with engine.begin() as connection:
        created = connection.execute(statement).mappings().first()
        if created is not None:
            log.info("privacy request %s (%s) queued", created["request_id"], kind)
            return PrivacyRequest.of(created), True
        existing = connection.execute(
            select(table).where(
                table.c.kind == kind,
                table.c.user_id == user_id,
                table.c.status.in_(PRIVACY_REQUEST_OPEN),
            )
        )
        return PrivacyRequest.of(existing.mappings().one()), False


def open_requests(engine: Engine) -> list[PrivacyRequest]:
    """Requests still to be done (pending, or failed and to be retried), oldest due first."""
    table = privacy_requests
    with engine.connect() as connection:
        rows = connection.execute(
            select(table).where(table.c.status.in_(PRIVACY_REQUEST_OPEN)).order_by(*_DUE_ORDER)
        )
        return [PrivacyRequest.of(row) for row in rows.mappings()]


def get_request(engine: Engine, request_id: str) -> PrivacyRequest | None:
    with engine.connect() as connection:
        row = (
            connection.execute(
                select(privacy_requests).where(privacy_requests.c.request_id == request_id)
            )
            .mappings()
            .first()
        )
    return PrivacyRequest.of(row) if row is not None else None


_DUE_ORDER = (
    privacy_requests.c.due_at,
    privacy_requests.c.requested_at,
    privacy_requests.c.request_id,
)


def claim_next(connection: Connection, skip: Sequence[str] = ()) -> PrivacyRequest | None:
    """The open request due first that no other transaction holds, locked by
    ``connection``'s transaction until it ends (``skip``: ids not to take again)."""
    table = privacy_requests
    query = select(table).where(table.c.status.in_(PRIVACY_REQUEST_OPEN))
    if skip:
        query = query.where(table.c.request_id.not_in(list(skip)))
    query = query.order_by(*_DUE_ORDER).limit(1).with_for_update(skip_locked=True)
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
