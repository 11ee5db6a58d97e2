"""``encore simulate``: stream simulated listening to the API or straight to Kafka."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

from pipelines.simulation.run import Target, default_start

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``1h30m``, ``2d`` as a timedelta."""
    parts = _DURATION.findall(text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower():
        raise typer.BadParameter(f"expected a duration like 90s, 15m, 1h30m or 2d, got {text!r}")
    return sum((timedelta(**{_UNITS[u]: float(n)}) for n, u in parts), timedelta())


def parse_start(text: str) -> datetime:
    """An ISO-8601 time (UTC when no offset is given), or ``now``."""
    if text == "now":
        return datetime.now(UTC).replace(microsecond=0)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(
            f"expected ISO-8601 like 2026-11-23T18:00Z, got {text!r}"
        ) from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def register(app: typer.Typer) -> None:
    """Add ``encore simulate`` to the ``encore`` app."""

    @app.command("simulate")
    def simulate(
        seed: int = typer.Option(0, help="Same seed, same events (ids included)."),
        start: str = typer.Option(
            None,
            help=(
                "Simulated start time (ISO-8601, or 'now'). Default: the whole hour before "
                "now minus --duration, so the events are recent enough for the API; give "
                "--start (with --seed) for a reproducible run."
            ),
            show_default=False,
        ),
        duration: str = typer.Option("1h", help="Simulated listening span: 90s, 15m, 1h, 2d."),
        users: int = typer.Option(10_000, help="Listeners (synthetic population)."),
        dataset: str = typer.Option(
            None,
            help=(
                "hetrec-lastfm-2k: listeners from HetRec play counts (load the catalog with "
                "--source hetrec-lastfm-2k first)."
            ),
        ),
        target: Target = typer.Option(
            Target.api, help="Post through the API, or produce to Kafka."
        ),
        rate: float = typer.Option(None, help="Events per second (default: as fast as possible)."),
        max_events: int = typer.Option(None, help="Stop after this many valid events."),
        duplicates: float = typer.Option(0.0, help="Fraction of events re-sent (same event_id)."),
        malformed: float = typer.Option(0.0, help="Fraction of malformed records added."),
        api_url: str = typer.Option(None, help="API base URL (default: from settings)."),
        batch_size: int = typer.Option(500, help="Events per API request."),
        concurrency: int = typer.Option(2, help="Concurrent API requests."),
    ) -> None:
        """Simulate listening to the catalog's songs (`encore catalog load` first) and send it
        as v1 play events; prints a summary at the end.

        With --target api the malformed records come back 422 and are counted as rejected;
        with --target kafka they reach the topic as they are, for the ingestion job to reject.
        """
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from encore.errors import EncoreError
        from encore.settings import get_settings
        from pipelines.simulation import SimulationConfig, SimulationOptions, run_simulation

        console = Console(stderr=True)
        settings = get_settings()
        span = parse_duration(duration)
        try:
            options = SimulationOptions(
                config=SimulationConfig(
                    seed=seed,
                    start=parse_start(start) if start else default_start(span),
                    duration=span,
                    users=users,
                    dataset=dataset,
                    max_events=max_events,
                ),
                target=target,
                duplicates=duplicates,
                malformed=malformed,
                rate=rate,
                api_url=api_url,
                batch_size=batch_size,
                concurrency=concurrency,
            )
            with Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                TextColumn("{task.completed:,.0f} records"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task(f"sending to {target.value}", total=None)
                report = run_simulation(
                    settings, options, progress=lambda n: progress.advance(task, n)
                )
        except EncoreError as error:
            console.print(f"[red]error:[/red] {error}", soft_wrap=True)
            raise typer.Exit(code=1) from error

        table = Table("simulated", "value", title=f"simulation -> {report.sent.target}")
        for what, value in report.rows():
            table.add_row(what, value)
        Console().print(table)
        for error in report.sent.errors:
            console.print(f"[yellow]error:[/yellow] {error}")
        if not report.ok:
            raise typer.Exit(code=1)
