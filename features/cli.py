"""``encore features apply``, ``materialize`` and ``push`` (heavy imports inside); the
session pusher is also the ``feature-push`` service of ``encore up``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from encore.parts import DemoStep, Part
from encore.services import Service
from encore.settings import Settings, settings_env

features_app = typer.Typer(
    help="The feature store (Feast): offline over the lake, online in Redis.",
    no_args_is_help=True,
)


def parse_time(value: str | None) -> datetime | None:
    """An ISO-8601 time (a date means its 00:00), as UTC when it names no zone.

    Raises:
        typer.BadParameter: not ISO-8601; click names the option it came from.
    """
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO-8601 time like 2026-04-02 or 2026-04-02T06:00Z, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _fail(error: Exception) -> typer.Exit:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
    return typer.Exit(code=1)


@features_app.command("apply")
def apply_command() -> None:
    """Render feature_store.yaml from the settings and register every definition."""
    from encore.errors import EncoreError
    from encore.settings import get_settings
    from features import store

    settings = get_settings()
    try:
        names = store.apply(settings)
    except EncoreError as error:
        raise _fail(error) from None
    typer.echo(f"applied {len(names)} definitions to {settings.features_repo}: {', '.join(names)}")


@features_app.command("materialize")
def materialize_command(
    end: datetime | None = typer.Option(
        None,
        "--end",
        parser=parse_time,
        help="Load values known up to this time (ISO-8601; default: now, UTC).",
    ),
    start: datetime | None = typer.Option(
        None,
        "--start",
        parser=parse_time,
        help="From this time (ISO-8601; default: --end less the snapshot TTL).",
    ),
    through: str | None = typer.Option(
        None,
        "--through",
        help="Instead of --end: the values known by the end of this day (YYYY-MM-DD), its "
        "snapshot included (a schedule's run for that day).",
    ),
) -> None:
    """Load the latest feature values into the online store."""
    from datetime import date, timedelta

    from encore.errors import EncoreError
    from encore.settings import get_settings
    from features import store

    if through is not None:
        if end is not None:
            raise typer.BadParameter("give --end or --through, not both", param_hint="--through")
        try:
            day = date.fromisoformat(through)
        except ValueError:
            raise typer.BadParameter(
                f"expected a day like 2026-04-02, got {through!r}", param_hint="--through"
            ) from None
        # a day's snapshot is known at the next day's 00:00 (features.jobs); Feast's end is
        # exclusive, so one second past it
        end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1, seconds=1)
    try:
        store.materialize(get_settings(), end=end, start=start)
    except EncoreError as error:
        raise _fail(error) from None
    if through is not None:
        typer.echo(f"online features: values known by the end of {through} (through {end})")


@features_app.command("lake-day")
def lake_day_command() -> None:
    """Print the newest day the lake's gold tables were built for (YYYY-MM-DD): the day an
    asset-triggered run (features_daily, train_recommenders) works on. Exit 1 if none."""
    from encore.settings import get_settings
    from pipelines.lake.audit import read_runs

    runs = read_runs(get_settings()).to_pylist()
    days = [r["day"] for r in runs if str(r["table_name"]).startswith("gold.")]
    if not days:
        raise _fail(LookupError("the lake has built no gold table yet (ops.job_runs)"))
    typer.echo(max(days).isoformat())


@features_app.command("push")
def push_command() -> None:
    """Push listeners' sessions to the online store as the ingestion job applies plays.

    Runs until stopped; `encore up feature-push` runs it in the background."""
    import signal
    import threading

    from encore.settings import get_settings
    from features import push

    settings = get_settings()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    typer.echo(f"pushing sessions from {settings.kafka.play_events_topic} (Ctrl-C stops)")
    push.run(settings, stop)


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")


def _demo_step(settings: Settings) -> None:
    from features.demo import run_demo_step

    run_demo_step(settings)


def _push_command(settings: Settings) -> list[str]:
    return [str(Path(sys.executable).with_name("encore")), "features", "push"]


def _push_running(settings: Settings) -> bool:
    from encore import supervisor

    return supervisor.running_pid(settings.home, FEATURE_PUSH.name) is not None


FEATURE_PUSH = Service(
    "feature-push",
    address=lambda s: f"{s.kafka.play_events_topic} + recent:v1 -> Feast listener_session",
    command=_push_command,
    healthy=_push_running,
    # the child sees exactly these settings, including ones set in code (tests)
    env=settings_env,
    needs=("kafka", "redis"),
    start_timeout_s=30,
    job=True,
)


PART = Part(
    "features",
    commands=register,
    demo_steps=(DemoStep(18, "features: Feast apply, materialize to Redis", _demo_step),),
    services=(FEATURE_PUSH,),
)
