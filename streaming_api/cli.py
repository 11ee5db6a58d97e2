"""``encore api``: serve the streaming API with uvicorn; ``encore up api`` runs it supervised."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from encore.parts import DemoStep, Part
from encore.services import Service
from encore.settings import Settings, settings_env


def register(app: typer.Typer) -> None:
    """Add the API's commands to the ``encore`` app."""
    from streaming_api.catalog.cli import catalog_app
    from streaming_api.media.cli import content_app

    app.add_typer(catalog_app, name="catalog")
    app.add_typer(content_app, name="content")

    @app.command("api")
    def api(
        host: str = typer.Option(None, help="Interface to bind (default: settings.api.host)."),
        port: int = typer.Option(None, help="Port to bind (default: settings.api.port)."),
        workers: int = typer.Option(
            None, help="Worker processes, each with its own Kafka producer (settings.api.workers)."
        ),
        log_level: str = typer.Option("warning", help="uvicorn log level."),
    ) -> None:
        """Serve the streaming API (playback events, accounts); docs at /docs."""
        import uvicorn

        from encore.errors import ConfigurationError
        from encore.settings import get_settings
        from streaming_api.auth import check_secrets

        # the workers read their settings from the environment: the flags go there, so that
        # what the API tells clients (stream URLs on api.base_url) is where it listens
        for name, value in (("ENCORE_API__HOST", host), ("ENCORE_API__PORT", port)):
            if value is not None:
                os.environ[name] = str(value)
        get_settings.cache_clear()
        settings = get_settings()
        try:  # here too, so that the refusal is one line, not a worker's traceback
            check_secrets(settings)
            _check_schema(settings)
        except ConfigurationError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(code=1) from None
        uvicorn.run(
            "streaming_api.app:create_app",
            factory=True,
            host=host or settings.api.host,
            port=port or settings.api.port,
            workers=workers or settings.api.workers,
            log_level=log_level,
            # every request is counted by the caller; per-request log lines cost throughput
            access_log=False,
            # the client address is the socket's peer unless api.trusted_proxies says otherwise
            # (streaming_api.ratelimit); uvicorn would believe X-Forwarded-For from localhost
            proxy_headers=False,
            # a spawned worker imports the whole CLI (~2.5 s of CPU) before it answers the
            # supervisor's ping: with the 5 s default a loaded machine kills and respawns
            # workers for minutes (2 workers at load 11: 289 s to come up, 37 s with this)
            timeout_worker_healthcheck=60,
        )


def _check_schema(settings: Settings) -> None:
    """Refuse an old schema before the workers start (each would refuse it again)."""
    from sqlalchemy.exc import OperationalError

    from encore.db import create_engine, migrate

    engine = create_engine(settings, pool_size=1, connect_timeout_s=2)
    try:
        migrate.check_current(engine)
    except OperationalError:
        pass  # PostgreSQL down: the API starts and answers 503 until it is back
    finally:
        engine.dispose()


def _api_command(settings: Settings) -> list[str]:
    encore = Path(sys.executable).with_name("encore")
    api = settings.api
    port, workers = str(api.port), str(api.workers)
    return [str(encore), "api", "--host", api.host, "--port", port, "--workers", workers]


def _api_healthy(settings: Settings) -> bool:
    import httpx

    try:
        # liveness: the process serves; whether Kafka and PostgreSQL answer is readiness
        url = f"http://{settings.api.host}:{settings.api.port}/api/v1/health/live"
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


API = Service(
    "api",
    address=lambda s: f"http://{s.api.host}:{s.api.port}",
    command=_api_command,
    healthy=_api_healthy,
    # the child sees exactly these settings, including ones set in code (tests)
    env=settings_env,
    ports=lambda s: {"ENCORE_API__PORT": s.api.port},
    start_timeout_s=60,
    stop_timeout_s=20,
)


def _catalog_demo(settings: Settings) -> None:
    from streaming_api.demo import catalog_step

    catalog_step(settings)


def _listener_demo(settings: Settings) -> None:
    from streaming_api.demo import listener_step

    listener_step(settings)


PART = Part(
    "streaming_api",
    commands=register,
    demo_steps=(
        # before the play events (10): the simulator draws its listeners' songs from it
        DemoStep(5, "catalog: migrate, load, ingest masters to HLS", _catalog_demo),
        DemoStep(15, "listener API: search, stream, playlist, plays", _listener_demo),
    ),
    services=(API,),
)
