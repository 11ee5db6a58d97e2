"""``encore privacy request|queue|process``: listeners' requests queued, then processed on a
deadline (heavy imports inside the commands; the library is ``pipelines.lake.privacy_queue``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

import typer

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from encore.settings import Settings

Kind = Literal["erase", "export"]
"""The queue's kinds (``encore.db.schema.PRIVACY_REQUEST_KINDS``; a test checks they agree):
spelled here so that the CLI starts without loading the database code."""


def register(privacy_app: typer.Typer) -> None:
    """Add the queue's commands to ``encore privacy``."""
    privacy_app.command("request")(request)
    privacy_app.command("queue")(queue)
    privacy_app.command("process")(process)


def request(
    kind: Kind = typer.Argument(..., help="erase: delete them from the lake; export: a copy."),
    user: str = typer.Option(..., "--user", help="The listener's user id."),
) -> None:
    """Queue a listener's erasure or export, due within lake.privacy_deadline_hours.

    Prints the request's id and due time. An open request of the same kind for the same
    listener is returned, not duplicated.
    """
    from datetime import UTC

    from pipelines.lake import privacy_queue

    with _queue_engine() as (settings, engine):
        queued, created = privacy_queue.queue_request(settings, engine, kind, user)
    due = f"{queued.due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    state = "queued" if created else f"already open ({queued.status})"
    print(f"{queued.request_id} {kind} {state}, due {due}")


def queue() -> None:
    """List the open requests (pending, or failed and to be retried), oldest due first."""
    from datetime import UTC

    from rich.console import Console
    from rich.table import Column, Table

    from pipelines.lake import privacy_queue

    with _queue_engine() as (_, engine):
        requests = privacy_queue.open_requests(engine)
    now = privacy_queue.utc_now()
    headers = ("kind", "status", "attempts", "requested (UTC)", "due (UTC)", "late by")
    title = f"open privacy requests: {len(requests)}"
    table = Table(Column("request", no_wrap=True), *headers, "last error", title=title)
    for r in requests:
        late = r.late_by(now)
        table.add_row(
            r.request_id,
            r.kind,
            r.status,
            str(r.attempts),
            f"{r.requested_at.astimezone(UTC):%Y-%m-%d %H:%M}",
            f"{r.due_at.astimezone(UTC):%Y-%m-%d %H:%M}",
            privacy_queue.duration(late) if late else "",
            r.last_error or "",
            style="red" if late else None,
        )
    Console().print(table)


def process(
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Process at most this many requests; default: all open."
    ),
) -> None:
    """Process open requests oldest-due first: erase or export each, one line each.

    Exits 1 if a request failed (it stays open and is retried next time), finished after
    its due time, or is still open past it. Safe to run twice at once: a request is taken
    by one processor only.
    """
    from rich.console import Console
    from rich.markup import escape

    from pipelines.lake import privacy_queue

    console = Console(stderr=True)
    with _queue_engine() as (settings, engine):
        report = privacy_queue.process_requests(
            settings,
            engine,
            limit,
            on_processed=lambda r: print(r.describe(privacy_queue.utc_now()), flush=True),
        )
    for r in report.overdue:
        print(r.describe(report.checked_at))
    summary = (
        f"{len(report.processed)} processed, {len(report.failed)} failed, {len(report.late)} late"
    )
    if not report.ok:
        console.print(f"[red]privacy requests:[/red] {escape(summary)}", soft_wrap=True)
        raise typer.Exit(code=1)
    console.print(f"privacy requests: {summary}")


@contextmanager
def _queue_engine() -> Iterator[tuple[Settings, Engine]]:
    """``(settings, engine)`` on Encore's database; a configuration, schema or connection
    problem is one red line and exit 1."""
    from rich.console import Console
    from rich.markup import escape
    from sqlalchemy.exc import OperationalError

    from encore.errors import EncoreError
    from encore.settings import get_settings
    from pipelines.lake import privacy_queue

    try:
        settings = get_settings()
        engine = privacy_queue.connect(settings)
    except EncoreError as error:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    try:
        yield settings, engine
    except (EncoreError, OperationalError) as error:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    finally:
        engine.dispose()
