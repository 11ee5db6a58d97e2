"""``encore dashboard``: the analysts' dashboard, supervised (``encore up dashboard`` too) or in
the terminal (``--foreground``); and its demo step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from encore.parts import DemoStep, Part
from encore.services import Service
from encore.settings import Settings, settings_env

APP = Path(__file__).resolve().parent / "app.py"
PAGES = ("overview", "trends", "retention", "skips", "real-time", "recommendations")
"""The pages' URL paths (``dashboards/app.py``)."""
NOTEBOOKS_COMMAND = "uv run jupyter lab notebooks/"


def address(settings: Settings) -> str:
    return f"http://{settings.dashboard.host}:{settings.dashboard.port}"


def streamlit_command(settings: Settings, watch: bool = False) -> list[str]:
    """``streamlit run`` of the app on the settings' address: headless, no usage statistics,
    and (unless ``watch``) no file watcher: a served dashboard does not reload on edits."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        f"--server.address={settings.dashboard.host}",
        f"--server.port={settings.dashboard.port}",
        f"--server.fileWatcherType={'auto' if watch else 'none'}",
        # no "Deploy" button nor developer menu for analysts
        "--client.toolbarMode=minimal",
        # the pages turn errors into a reason; should one escape, analysts see no traceback
        *([] if watch else ["--client.showErrorDetails=type"]),
    ]


def _healthy(settings: Settings) -> bool:
    import httpx

    try:
        return httpx.get(f"{address(settings)}/_stcore/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


DASHBOARD = Service(
    "dashboard",
    address=address,
    command=streamlit_command,
    healthy=_healthy,
    # the pages read the same lake, Redis and MLflow as the platform that started them
    env=settings_env,
    ports=lambda s: {"ENCORE_DASHBOARD__PORT": s.dashboard.port},
    start_timeout_s=60,
    stop_timeout_s=15,
    ui="Analysts' dashboard",
)


def register(app: typer.Typer) -> None:
    """Add ``encore dashboard`` to the ``encore`` app."""

    @app.command("dashboard")
    def dashboard(
        foreground: bool = typer.Option(
            False,
            "--foreground",
            help="Run in this terminal until Ctrl-C, reloading on edits, instead of supervised.",
        ),
    ) -> None:
        """The analysts' dashboard (overview, trends, retention, skips, real time,
        recommendations); started supervised like `encore up dashboard`, its URL printed."""
        import os

        from rich.console import Console

        from encore import services
        from encore.errors import EncoreError
        from encore.settings import get_settings

        console = Console(stderr=True)
        settings = get_settings()
        if foreground:
            console.print(f"dashboard at {address(settings)} (Ctrl-C stops it)")
            env = {**os.environ, **settings_env(settings)}
            try:
                code = subprocess.run(streamlit_command(settings, watch=True), env=env).returncode
            except KeyboardInterrupt:
                code = 0
            raise typer.Exit(code=code)
        try:
            services.up(settings, ["dashboard"], report=lambda line: console.print(f"  {line}"))
        except EncoreError as error:
            console.print(f"[red]error:[/red] {error}", soft_wrap=True)
            raise typer.Exit(code=1) from None
        typer.echo(address(settings))
        console.print("stop it with `encore down dashboard`")


def _demo_step(settings: Settings) -> None:
    """The dashboard on the demo's lake, healthy, its address and the notebooks' command."""
    from rich.console import Console

    from dashboards.lake import lake_status
    from dashboards.metrics import filter_options, overview
    from encore import services

    console = Console(stderr=True)
    services.up(settings, ["dashboard"], report=lambda line: console.print(f"  {line}"))
    status = lake_status(settings)
    if status.has_data:
        filters = filter_options(settings).default_filters()
        figures = overview(settings, filters)
        console.print(
            f"  overview {filters.start} to {filters.end}: DAU {figures.dau.value or 0:,.1f}, "
            f"plays {figures.plays.value or 0:,.0f}, "
            f"listening hours {figures.listening_hours.value or 0:,.1f}"
        )
    else:
        console.print(f"  the lake has no gold tables yet: the pages say so. {status.fill_hint}")
    base = address(settings)
    console.print(f"Dashboard: {base}  (pages: {', '.join(f'/{page}' for page in PAGES)})")
    console.print(
        f"Notebooks: `{NOTEBOOKS_COMMAND}` (notebooks/README.md). Each .ipynb is paired with "
        "a .py source (jupytext, py:percent): edit either, then "
        "`uv run jupytext --sync notebooks/*.ipynb`."
    )
    console.print(
        "The dashboard stops with the demo; `encore demo --keep-up` leaves it running, "
        "`encore dashboard` starts it again."
    )


PART = Part(
    "dashboards",
    commands=register,
    demo_steps=(DemoStep(40, "dashboards and notebooks: where to look", _demo_step),),
    services=(DASHBOARD,),
)
