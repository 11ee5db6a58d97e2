"""``encore features apply`` and ``encore features materialize`` (heavy imports inside)."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from encore.parts import DemoStep, Part
from encore.settings import Settings

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
) -> None:
    """Load the latest feature values into the online store."""
    from encore.errors import EncoreError
    from encore.settings import get_settings
    from features import store

    try:
        store.materialize(get_settings(), end=end, start=start)
    except EncoreError as error:
        raise _fail(error) from None


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")


def _demo_step(settings: Settings) -> None:
    from features.demo import run_demo_step

    run_demo_step(settings)


PART = Part(
    "features",
    commands=register,
    demo_steps=(DemoStep(18, "features: Feast apply, materialize to Redis", _demo_step),),
)
