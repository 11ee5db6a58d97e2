"""``encore simulate``: stream simulated listening to the API or straight to Kafka."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import typer

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


class Target(StrEnum):
    api = "api"
    kafka = "kafka"


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
            "2026-11-23T18:00:00Z", help="Simulated start time (ISO-8601, or 'now')."
        ),
        duration: str = typer.Option("1h", help="Simulated listening span: 90s, 15m, 1h, 2d."),
        users: int = typer.Option(10_000, help="Listeners (synthetic population)."),
        artists: int = typer.Option(2_000, help="Artists (synthetic catalogue)."),
        dataset: str = typer.Option(
            None, help="hetrec-lastfm-2k: listeners and artists from HetRec play counts."
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
        """Simulate listening and send it as v1 play events; prints a summary at the end.

        With --target api the malformed records come back 422 and are counted as rejected;
        with --target kafka they reach the topic as they are, for the ingestion job to reject.
        """
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from encore.errors import EncoreError
        from encore.settings import get_settings
        from pipelines.simulation.traffic import (
            FaultStats,
            SimulationConfig,
            generate_events,
            inject_faults,
            post_to_api,
            send_to_kafka,
        )

        console = Console(stderr=True)
        settings = get_settings()
        try:
            config = SimulationConfig(
                seed=seed,
                start=parse_start(start),
                duration=parse_duration(duration),
                users=users,
                artists=artists,
                dataset=dataset,
                max_events=max_events,
            )
            stats = FaultStats()
            records = inject_faults(generate_events(config), duplicates, malformed, seed, stats)
            with Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                TextColumn("{task.completed:,.0f} records"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as progress:
                task = progress.add_task(f"sending to {target.value}", total=None, rate="")

                def advance(n: int) -> None:
                    progress.advance(task, n)
                    elapsed = progress.tasks[task].elapsed or 0
                    if elapsed:
                        done = progress.tasks[task].completed
                        progress.update(task, rate=f"{done / elapsed:,.0f}/s")

                if target is Target.kafka:
                    report = send_to_kafka(
                        settings, records, rate=rate, progress=advance, faults=stats
                    )
                else:
                    base_url = api_url or f"http://{settings.api.host}:{settings.api.port}"
                    report = post_to_api(
                        base_url,
                        settings.api.service_token.get_secret_value(),
                        records,
                        batch_size=batch_size,
                        concurrency=concurrency,
                        rate=rate,
                        progress=advance,
                        faults=stats,
                    )
        except EncoreError as error:
            console.print(f"[red]error:[/red] {error}")
            raise typer.Exit(code=1) from error

        table = Table("simulated", "value", title=f"simulation -> {report.target}")
        table.add_row("valid events", f"{stats.valid:,}")
        table.add_row("duplicates re-sent", f"{report.duplicates:,}")
        table.add_row("malformed added", f"{report.malformed:,}")
        table.add_row("sent (acknowledged)", f"{report.sent:,}")
        table.add_row("rejected by API (422)", f"{report.rejected:,}")
        table.add_row("failed", f"{report.failed:,}")
        table.add_row("retries", f"{report.retries:,}")
        table.add_row("elapsed", f"{report.elapsed_s:.1f} s")
        table.add_row("events/s", f"{report.events_per_s:,.0f}")
        Console().print(table)
        for error in report.errors:
            console.print(f"[yellow]error:[/yellow] {error}")
        if report.failed:
            raise typer.Exit(code=1)
