"""The ``encore`` command: one Typer app, subcommands by area.

The core commands (the platform's services and jobs, smoke checks, the demo) live here.
Parts add theirs through the ``encore.parts`` entry points (see :mod:`encore.parts`); their
modules import heavy dependencies inside the commands, so ``encore --help`` stays fast.
"""

from __future__ import annotations

import sys
import time

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from encore import logs, parts, services
from encore.errors import EncoreError
from encore.services.airflow import api_url as airflow_api_url
from encore.settings import Settings, SettingsError, get_settings

app = typer.Typer(
    name="encore",
    help="Encore: play events to recommendations, on one machine or a cluster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def _report(message: str) -> None:
    console.print(f"  {message}")


def _stop_everything(settings: Settings) -> None:
    """Parts' stop hooks, then every service and job we started (jobs first)."""
    for part in parts.load_parts():
        for hook in part.stop_hooks:
            if hook.stop(settings):
                _report(f"stopped {hook.name}")
    services.down(settings, report=_report)


def fail(error: Exception) -> typer.Exit:
    # one line however long (no wrapping), brackets in the message shown as written
    console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
    return typer.Exit(code=1)


@app.callback()
def main(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show libraries' log lines too (always in logs/encore.log)."
    ),
) -> None:
    try:  # the first read of the settings: a mistake in them is one line, exit 2
        settings = get_settings()
    except SettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None
    logs.configure(settings.home, verbose=verbose, packages=parts.part_packages())


@app.command()
def up(
    service: list[str] = typer.Argument(
        None,
        help="Services or jobs to start (default: kafka, redis, postgres, mlflow).",
    ),
) -> None:
    """Start the local platform (or the named services and jobs) and wait until healthy."""
    settings = get_settings()
    started = time.monotonic()
    try:
        services.up(settings, service or None, report=_report)
    except EncoreError as error:
        raise fail(error) from error
    what = ", ".join(service) if service else "platform"
    console.print(
        f"[green]{what} up[/green] in {time.monotonic() - started:.1f} s (state in {settings.home})"
    )


@app.command()
def down(
    service: list[str] = typer.Argument(None, help="Services or jobs to stop (default: all)."),
) -> None:
    """Stop what this ENCORE_HOME started (pid files): jobs first, then the services."""
    settings = get_settings()
    try:
        if service:
            services.down(settings, service, report=_report)
        else:
            _stop_everything(settings)
    except EncoreError as error:
        raise fail(error) from error


@app.command()
def status() -> None:
    """Health of every service and job; exits 1 if a platform service or a started one is down."""
    try:
        rows = services.status(get_settings())
    except EncoreError as error:
        raise fail(error) from error
    core = {service.name for service in services.CORE}
    table = Table("service", "healthy", "pid", "address", "note")
    failed = False
    for row in rows:
        counts = row.name in core or row.pid is not None
        failed |= counts and not row.healthy
        table.add_row(
            row.name,
            "[green]yes[/green]" if row.healthy else ("[red]no[/red]" if counts else "-"),
            str(row.pid or "-"),
            row.address,
            row.detail,
        )
    Console().print(table)
    if failed:
        raise typer.Exit(code=1)


@app.command("logs")
def show_logs(
    service: str = typer.Argument(..., help="A service or job (see `encore status`), or encore."),
    lines: int = typer.Option(50, "--lines", "-n", help="How many lines from the end."),
) -> None:
    """Print the end of a service's (or this command's own) log file."""
    settings = get_settings()
    known = ["encore", *services.registry()]
    if service not in known:
        raise fail(EncoreError(f"unknown service {service!r}; known: {known}"))
    path = (
        logs.log_path(settings.home)
        if service == "encore"
        else services.log_file(settings, service)
    )
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
        services.up(settings, report=_report)
        console.rule("smoke checks")
        ok = _run_smoke(settings)
        for step in _demo_steps() if ok else []:
            console.rule(step.title)
            step.run(settings)
        urls()
    except EncoreError as error:
        ok = False
        console.print(f"[red]error:[/red] {error}")
    finally:
        if not keep_up:
            console.rule("shutting down")
            _stop_everything(settings)
    if not ok:
        console.print(f"[dim]details in {logs.log_path(settings.home)}[/dim]")
        raise typer.Exit(code=1)
    console.print("[green]demo finished[/green]")


def _demo_steps() -> list[parts.DemoStep]:
    """Every part's demo steps and the core's own (the scheduled platform, last)."""
    from encore.scheduling_cli import DEMO_STEP

    return sorted(
        [*parts.demo_steps(parts.load_parts()), DEMO_STEP],
        key=lambda step: (step.order, step.title),
    )


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


db_app = typer.Typer(help="Encore's PostgreSQL schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="Target revision (default: the latest)."),
) -> None:
    """Migrate the database to the code's schema (idempotent; existing rows are kept)."""
    from encore.db import migrate

    try:
        before, after = migrate.upgrade(get_settings(), revision)
    except EncoreError as error:
        raise fail(error) from None
    if before == after:
        _report(f"database already at revision {after}")
    else:
        _report(f"database upgraded: {before or '(empty)'} -> {after}")


@db_app.command("current")
def db_current() -> None:
    """The database's revision and the one this code needs."""
    from sqlalchemy.exc import OperationalError

    from encore.db import create_engine, migrate

    engine = create_engine(get_settings(), pool_size=1)
    try:
        with engine.connect() as connection:
            current = migrate.current_revision(connection)
    except OperationalError as error:
        raise fail(EncoreError(f"PostgreSQL is unreachable: {error.orig}")) from None
    finally:
        engine.dispose()
    head = migrate.head_revision()
    state = "up to date" if current == head else "behind: run `encore db upgrade`"
    _report(f"database at {current or '(none)'}, code needs {head} ({state})")


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
    table.add_row("Airflow UI (encore up airflow)", airflow_api_url(settings))
    for service in services.registry().values():
        if service.ui:
            table.add_row(f"{service.ui} (encore up {service.name})", service.address(settings))
    table.add_row("Logs", str(settings.home / "logs"))
    Console().print(table)


def _register_scheduling() -> None:
    from encore.scheduling_cli import airflow_app

    app.add_typer(airflow_app, name="airflow")


def _register_parts() -> None:
    for part in parts.load_parts():
        if part.commands:
            part.commands(app)


_register_scheduling()
_register_parts()
