"""Listeners' privacy requests in Encore's database: the rows and how one is queued.

Shared by the listener API (a listener queues their own erasure or export) and the processor
(``pipelines.lake.privacy_queue``, ``encore privacy ...``), which fulfils them. A request is
due ``lake.privacy_deadline_hours`` after it arrives; queueing a second request of the same
kind for the same listener while one is open (pending, or failed and to be retried) returns
the open one, safely under concurrency (a partial unique index, ``ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine, RowMapping

from encore.db.schema import PRIVACY_REQUEST_KINDS, PRIVACY_REQUEST_OPEN, privacy_requests
from encore.errors import ContractError
from encore.settings import Settings

log = logging.getLogger(__name__)


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


DUE_ORDER = (
    privacy_requests.c.due_at,
    privacy_requests.c.requested_at,
    privacy_requests.c.request_id,
)
"""How open requests are taken: oldest due first; ties by arrival, then id (stable)."""


def open_requests(engine: Engine) -> list[PrivacyRequest]:
    """Requests still to be done (pending, or failed and to be retried), oldest due first."""
    table = privacy_requests
    with engine.connect() as connection:
        rows = connection.execute(
            select(table).where(table.c.status.in_(PRIVACY_REQUEST_OPEN)).order_by(*DUE_ORDER)
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


def requests_of(engine: Engine, user_id: str) -> list[PrivacyRequest]:
    """The requests that still name ``user_id``, newest first (an erasure, once done, takes
    the id out of the queue: those requests no longer name anyone)."""
    table = privacy_requests
    with engine.connect() as connection:
        rows = connection.execute(
            select(table).where(table.c.user_id == user_id).order_by(table.c.requested_at.desc())
        )
        return [PrivacyRequest.of(row) for row in rows.mappings()]
