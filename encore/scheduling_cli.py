"""``encore airflow ...``: Airflow's CLI and one DAG run by hand, with the platform's settings.

Airflow lives in its own environment and reads its configuration from ``AIRFLOW__*``
variables derived from Encore's settings; these commands supply them, so a person types
``encore airflow run lake_daily --day 2026-11-29`` or ``encore airflow cli dags list``
instead of assembling that environment by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from encore.parts import DemoStep

if TYPE_CHECKING:
    from encore.settings import Settings

airflow_app = typer.Typer(
    help="Airflow with this platform's settings: run a DAG once, or any Airflow command.",
    no_args_is_help=True,
)


@airflow_app.command(
    "cli",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def airflow_cli(context: typer.Context) -> None:
    """Any Airflow CLI command with this platform's Airflow environment, e.g. `encore airflow
    cli dags list` or `encore airflow cli backfill create --dag-id lake_daily --from-date
    2026-11-23 --to-date 2026-11-29`."""
    import os
    import subprocess

    from encore.services import airflow
    from encore.settings import get_settings

    settings = get_settings()
    airflow.airflow_home(settings).mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        airflow.airflow_command(settings, *context.args),
        env={**os.environ, **airflow.airflow_env(settings)},
        cwd=airflow.airflow_home(settings),
    )
    raise typer.Exit(code=result.returncode)


@airflow_app.command("run")
def run(
    dag_id: str = typer.Argument(..., help="The DAG to run (lake_daily, train_recommenders...)."),
    day: str = typer.Option(
        None, "--day", help="The day a daily DAG processes (YYYY-MM-DD); default: yesterday (UTC)."
    ),
    logical_date: str = typer.Option(
        None, "--logical-date", help="Airflow's logical date instead of --day (hourly DAGs)."
    ),
    retries: bool = typer.Option(False, help="Retry failed tasks as the schedule would."),
) -> None:
    """Run one DAG once, every task in order (`airflow dags test`), and print each task's
    state; exit 1 if the run failed. Needs no running scheduler; the log is in the output."""
    from datetime import UTC, date, datetime, timedelta

    from rich.console import Console
    from rich.table import Table

    from encore import scheduling
    from encore.cli import fail
    from encore.errors import EncoreError
    from encore.services import airflow
    from encore.settings import get_settings

    settings = get_settings()
    console = Console(stderr=True)
    try:
        if logical_date is None:
            wanted = date.fromisoformat(day) if day else datetime.now(UTC).date() - timedelta(1)
            logical_date = scheduling.logical_date_for(wanted)
        airflow.prepare(settings)
        with console.status(f"{dag_id} at {logical_date}"):
            result = scheduling.run_dag(settings, dag_id, logical_date, retries=retries)
    except (EncoreError, ValueError) as error:
        raise fail(error) from None
    log = settings.home / "logs" / f"dag-{dag_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(result.output)
    table = Table("task", "state", title=f"{dag_id} {result.run_id}: {result.state}")
    for task, state in sorted(result.tasks.items()):
        table.add_row(task, state or "-")
    Console().print(table)
    console.print(f"log: {log}")
    if not result.succeeded:
        raise typer.Exit(code=1)


def _demo_step(settings: Settings) -> None:
    """Airflow up (the UI), then the day's DAGs once on the demo's data, with their states."""
    import time
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.table import Table

    from encore import scheduling, services
    from encore.errors import EncoreError
    from encore.services import airflow

    console = Console(stderr=True)
    # like every demo step's children: the demo runs on the built-in development secrets
    settings = settings.model_copy(update={"development": True})
    services.up(settings, ["airflow"], report=lambda message: console.print(f"  {message}"))
    now = datetime.now(UTC)
    day = now.date()  # the demo's simulated plays happened today
    table = Table("DAG", "logical date", "state", "tasks", "seconds", title="the day's DAGs")
    failed = []
    runs = [(dag_id, scheduling.logical_date_for(day)) for dag_id in scheduling.DAY_OF_DAGS]
    runs.append(("privacy_requests", now.replace(minute=0, second=0, microsecond=0).isoformat()))
    for dag_id, logical_date in runs:
        started = time.monotonic()
        with console.status(f"{dag_id} for {logical_date}"):
            result = scheduling.run_dag(settings, dag_id, logical_date)
        log = settings.home / "logs" / f"dag-{dag_id}.log"
        log.write_text(result.output)
        states = list(result.tasks.values())
        done = f"{states.count('success')}/{len(states)} succeeded"
        table.add_row(dag_id, logical_date, result.state, done, f"{time.monotonic() - started:.0f}")
        if not result.succeeded:
            failed.append(f"{dag_id} ({log})")
    Console().print(table)
    console.print(f"Airflow UI: {airflow.api_url(settings)} (DAG logs under logs/airflow)")
    if failed:
        raise EncoreError("DAG runs failed: " + ", ".join(failed))


DEMO_STEP = DemoStep(30, "scheduling: the day's DAGs through Airflow", _demo_step)
