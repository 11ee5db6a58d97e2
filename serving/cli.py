"""``encore serve``: the recommendation service with uvicorn; ``encore up serving`` runs it
supervised. Also the serving part's batch commands (precomputed lists, the A/B report)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from encore.parts import DemoStep, Part
from encore.services import Service
from encore.settings import Settings, settings_env


def register(app: typer.Typer) -> None:
    """Add the service's commands to the ``encore`` app."""
    from serving.ab import register_ab_commands
    from serving.precompute import register_recs_commands

    register_ab_commands(app)
    register_recs_commands(app)

    @app.command("serve")
    def serve(
        host: str = typer.Option(None, help="Interface to bind (default: settings.serving.host)."),
        port: int = typer.Option(None, help="Port to bind (default: settings.serving.port)."),
        workers: int = typer.Option(
            None, help="Worker processes, each with its own models (settings.serving.workers)."
        ),
        log_level: str = typer.Option("warning", help="uvicorn log level."),
    ) -> None:
        """Serve recommendations (for-you, similar, trending); docs at /docs."""
        import uvicorn

        from encore.errors import ConfigurationError
        from encore.settings import get_settings
        from encore.tokens import check_token_secrets

        for name, value in (("ENCORE_SERVING__HOST", host), ("ENCORE_SERVING__PORT", port)):
            if value is not None:
                os.environ[name] = str(value)
        get_settings.cache_clear()
        settings = get_settings()
        try:  # here too, so that the refusal is one line, not a worker's traceback
            check_token_secrets(settings)
        except ConfigurationError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(code=1) from None
        uvicorn.run(
            "serving.app:create_app",
            factory=True,
            host=host or settings.serving.host,
            port=port or settings.serving.port,
            workers=workers or settings.serving.workers,
            log_level=log_level,
            access_log=False,
        )


def _serve_command(settings: Settings) -> list[str]:
    encore = Path(sys.executable).with_name("encore")
    serving = settings.serving
    return [
        str(encore),
        "serve",
        "--host",
        serving.host,
        "--port",
        str(serving.port),
        "--workers",
        str(serving.workers),
    ]


def _serving_healthy(settings: Settings) -> bool:
    import httpx

    try:
        url = f"http://{settings.serving.host}:{settings.serving.port}/api/v1/health/live"
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


SERVING = Service(
    "serving",
    address=lambda s: f"http://{s.serving.host}:{s.serving.port}",
    command=_serve_command,
    healthy=_serving_healthy,
    env=settings_env,
    ports=lambda s: {"ENCORE_SERVING__PORT": s.serving.port},
    # start-up loads the champion, its FAISS index and the dimensions before answering
    start_timeout_s=120,
    stop_timeout_s=20,
)


def _demo(settings: Settings) -> None:
    from serving.demo import demo_step

    demo_step(settings)


PART = Part(
    "serving",
    commands=register,
    demo_steps=(DemoStep(21, "recommendations: for-you, a session of one genre, again", _demo),),
    services=(SERVING,),
)
