"""The ``encore`` command: one Typer app, subcommands by area.

The core commands (platform services, smoke checks) live here. Each part adds its own
commands through a ``register(app)`` function in its ``cli`` module, listed in
``PART_CLIS``; those modules import their heavy dependencies inside the commands, so
``encore --help`` stays fast. This entry point is the only place the core looks at parts.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Callable

import typer
from rich.console import Console
from rich.table import Table

from encore import services
from encore.errors import EncoreError
from encore.settings import Settings, get_settings

app = typer.Typer(
    name="encore",
    help="Encore: play events to recommendations, on one machine or a cluster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

PART_CLIS = ("streaming_api.cli", "pipelines.simulation.cli", "pipelines.cli", "models.cli")

# Steps parts add to `encore demo` (in their register()); each takes the settings and prints.
DEMO_STEPS: list[tuple[str, Callable[[Settings], None]]] = []

# What parts run on this ENCORE_HOME besides the services (the ingestion job...): `encore down`
# stops these first, so it leaves none of our processes behind. Each returns whether it ran.
STOP_HOOKS: list[tuple[str, Callable[[Settings], bool]]] = []


def _stop_everything(settings: Settings) -> None:
    for name, stop in STOP_HOOKS:
        if stop(settings):
            console.print(f"  stopped {name}")
    services.down(settings, report=lambda m: console.print(f"  {m}"))


def fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {error}")
    return typer.Exit(code=1)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kafka", "py4j", "httpx", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def up(
    service: list[str] = typer.Argument(None, help="Services to start (default: all)."),
) -> None:
    """Start the local platform (Kafka, Redis, PostgreSQL, MLflow) and wait until healthy."""
    settings = get_settings()
    started = time.monotonic()
    try:
        services.up(settings, service or None, report=lambda m: console.print(f"  {m}"))
    except EncoreError as error:
        raise fail(error) from error
    console.print(
        f"[green]platform up[/green] in {time.monotonic() - started:.1f} s "
        f"(state in {settings.home})"
    )


@app.command()
def down(
    service: list[str] = typer.Argument(None, help="Services to stop (default: all)."),
) -> None:
    """Stop the ingestion job, then exactly the services `encore up` started (pid files)."""
    settings = get_settings()
    try:
        if service:
            services.down(settings, service, report=lambda m: console.print(f"  {m}"))
        else:
            _stop_everything(settings)
    except EncoreError as error:
        raise fail(error) from error


@app.command()
def status() -> None:
    """Health of every service; exits 1 if any is unhealthy."""
    rows = services.status(get_settings())
    table = Table("service", "healthy", "pid", "address", "note")
    for row in rows:
        table.add_row(
            row.name,
            "[green]yes[/green]" if row.healthy else "[red]no[/red]",
            str(row.pid or "-"),
            row.address,
            row.detail,
        )
    Console().print(table)
    if not all(row.healthy for row in rows):
        raise typer.Exit(code=1)


@app.command()
def logs(
    service: str = typer.Argument(..., help="kafka, redis, postgres or mlflow."),
    lines: int = typer.Option(50, "--lines", "-n", help="How many lines from the end."),
) -> None:
    """Print the end of a service's log file."""
    settings = get_settings()
    if service not in services.SERVICES:
        raise fail(EncoreError(f"unknown service {service!r}; known: {list(services.SERVICES)}"))
    path = services.log_file(settings, service)
    if not path.exists():
        raise fail(EncoreError(f"{service} has no log yet at {path}"))
    console.print(f"[dim]{path}[/dim]")
    sys.stdout.write("".join(path.read_text(errors="replace").splitlines(True)[-lines:]))


@app.command()
def smoke() -> None:
    """Exercise every service once: Kafka, Spark+Delta, Flink+Kafka, MLflow, Redis, PostgreSQL."""
    if not _run_smoke(get_settings()):
        raise typer.Exit(code=1)


@app.command()
def demo(
    keep_up: bool = typer.Option(False, help="Leave the platform running afterwards."),
) -> None:
    """The main job end to end: platform up, smoke checks, every part's demo, platform down."""
    settings = get_settings()
    ok = False
    try:
        console.rule("platform")
        services.up(settings, report=lambda m: console.print(f"  {m}"))
        console.rule("smoke checks")
        ok = _run_smoke(settings)
        for title, step in DEMO_STEPS if ok else []:
            console.rule(title)
            step(settings)
        urls()
    except EncoreError as error:
        ok = False
        console.print(f"[red]error:[/red] {error}")
    finally:
        if not keep_up:
            console.rule("shutting down")
            _stop_everything(settings)
    if not ok:
        raise typer.Exit(code=1)
    console.print("[green]demo finished[/green]")


def _run_smoke(settings: Settings) -> bool:
    from encore import smoke as smoke_checks

    failures = 0
    for name, check in smoke_checks.CHECKS.items():
        started = time.monotonic()
        try:
            detail = check(settings)
        except Exception as error:  # a smoke run reports every failure, then exits non-zero
            failures += 1
            console.print(f"  [red]FAIL[/red] {name}: {error}")
            continue
        console.print(
            f"  [green]ok[/green]   {name} ({time.monotonic() - started:.1f} s): {detail}"
        )
    return failures == 0


@app.command()
def urls() -> None:
    """Where each UI and endpoint of the local platform lives."""
    settings = get_settings()
    table = Table("what", "where")
    table.add_row("MLflow UI", settings.mlflow.effective_tracking_uri)
    table.add_row("Kafka bootstrap", settings.kafka.servers)
    table.add_row("Redis", settings.redis.effective_url)
    table.add_row("PostgreSQL", settings.postgres.effective_dsn)
    table.add_row("Delta lake", settings.lake_root)
    table.add_row("Streaming API docs", f"http://{settings.api.host}:{settings.api.port}/docs")
    table.add_row("Service logs", str(settings.home / "logs"))
    Console().print(table)


def _register_parts() -> None:
    for module_name in PART_CLIS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                continue  # that part has no commands yet
            raise
        module.register(app)


_register_parts()
