"""The pipelines part: ``encore ingest start | stop | status``, ``encore simulate``,
``encore lake ...`` and ``encore privacy ...`` (``pipelines.lake.cli``), the ``ingest`` job of
``encore up`` / ``down`` / ``status``, and two steps of ``encore demo``: ingestion, then the
lake build.

Thin: each command loads settings, calls one function of ``pipelines.ingest.control`` (or
``pipelines.ingest.demo``, ``pipelines.lake.demo``) and reports. Heavy imports stay inside
the commands.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from encore import services
from encore.errors import EncoreError
from encore.parts import DemoStep, Part
from encore.services import Service
from encore.settings import Settings, get_settings
from pipelines.simulation.cli import register as register_simulate

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
    log = services.log_file(settings, control.NAME)
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
    pending = sum(current.pending.values())
    console.print(f"pending for bronze: {pending} rows (committed at the next bronze commit)")
    if not current.running:
        raise typer.Exit(code=1)


def _ingest_command(settings: Settings) -> list[str]:
    from pipelines.ingest import control

    return control.job_command(settings)


def _ingest_env(settings: Settings) -> dict[str, str]:
    from pipelines.ingest import control

    return control.job_env(settings)


def _ingest_running(settings: Settings) -> bool:
    from pipelines.ingest import control

    return control.running_pid(settings) is not None


def _demo_step(settings: Settings) -> None:
    from pipelines.ingest.demo import run_demo_step

    run_demo_step(settings)


def _lake_demo_step(settings: Settings) -> None:
    from pipelines.lake.demo import run_demo_step

    run_demo_step(settings)


INGEST = Service(
    "ingest",
    address=lambda s: f"{s.kafka.play_events_topic} -> {s.lake_root}",
    command=_ingest_command,
    healthy=_ingest_running,
    env=_ingest_env,
    needs=("kafka", "redis"),
    start_timeout_s=10,
    job=True,
)


def register(app: typer.Typer) -> None:
    """Mount ``encore ingest`` and ``encore simulate``."""
    from pipelines.lake.cli import lake_app, privacy_app

    app.add_typer(ingest_app, name="ingest")
    app.add_typer(lake_app, name="lake")
    app.add_typer(privacy_app, name="privacy")
    register_simulate(app)


PART = Part(
    "pipelines",
    commands=register,
    demo_steps=(
        DemoStep(10, "play events: API -> Kafka -> Flink -> Delta", _demo_step),
        DemoStep(17, "lake: silver, gold, quality, top songs published", _lake_demo_step),
    ),
    services=(INGEST,),
)
