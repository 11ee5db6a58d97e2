"""``encore ingest start | stop | status``, and the ingestion step of ``encore demo``.

Thin: each command loads settings, calls one function of ``pipelines.ingest.control`` (or
``pipelines.ingest.demo``) and reports. Heavy imports stay inside the commands.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from encore.errors import EncoreError
from encore.settings import Settings, get_settings

console = Console(stderr=True)
ingest_app = typer.Typer(
    help="The Flink ingestion job: Kafka play-events -> Delta bronze + Redis, exactly once.",
    no_args_is_help=True,
)


@ingest_app.command()
def start(
    foreground: bool = typer.Option(False, help="Run attached to this terminal until Ctrl-C."),
    fresh: bool = typer.Option(
        False, help="Ignore retained checkpoints (resume from the offsets committed to Delta)."
    ),
) -> None:
    """Start the job, resuming from its latest checkpoint; output goes to logs/ingest.log."""
    from pipelines.ingest import control

    settings = get_settings()
    try:
        result = control.start(settings, foreground=foreground, fresh=fresh)
    except EncoreError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=1) from error
    if foreground:
        raise typer.Exit(code=result)
    log = control.services.log_file(settings, control.NAME)
    console.print(f"ingestion job started (pid {result}); log: {log}")


@ingest_app.command()
def stop(
    kill: bool = typer.Option(False, help="SIGKILL at once instead of a graceful stop."),
) -> None:
    """Stop the job this ENCORE_HOME started; its checkpoints are kept for the next start."""
    from pipelines.ingest import control

    if control.stop(get_settings(), kill=kill):
        console.print("ingestion job stopped")
    else:
        console.print("ingestion job was not running")


@ingest_app.command()
def status() -> None:
    """Whether the job runs, its latest checkpoint, bronze offsets and the Kafka lag."""
    from pipelines.ingest import control

    try:
        current = control.status(get_settings())
    except EncoreError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=1) from error
    running = f"[green]yes[/green] (pid {current.pid})" if current.running else "[red]no[/red]"
    console.print(f"running: {running}")
    console.print(f"checkpoint: {current.checkpoint or '-'}")
    table = Table("partition", "bronze offset", "lag")
    for partition, lag in sorted(current.lag.items()):
        table.add_row(str(partition), str(current.committed.get(partition, "-")), str(lag))
    Console().print(table)
    if not current.running:
        raise typer.Exit(code=1)


def _stop_job(settings: Settings) -> bool:
    from pipelines.ingest import control

    return control.stop(settings)


def register(app: typer.Typer) -> None:
    """Mount ``encore ingest`` and add the streaming step to ``encore demo``."""
    from encore import cli as core_cli

    app.add_typer(ingest_app, name="ingest")
    core_cli.STOP_HOOKS.append(("ingestion job", _stop_job))
    try:
        from pipelines.ingest.demo import run_demo_step
    except ImportError:  # the demo needs the API and simulator parts; absent, skip the step
        return
    core_cli.DEMO_STEPS.append(("play events: API -> Kafka -> Flink -> Delta", run_demo_step))
