"""``encore api``: serve the streaming API with uvicorn."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the API's commands to the ``encore`` app."""

    @app.command("api")
    def api(
        host: str = typer.Option(None, help="Interface to bind (default: settings.api.host)."),
        port: int = typer.Option(None, help="Port to bind (default: settings.api.port)."),
        workers: int = typer.Option(1, help="Worker processes; each has its own Kafka producer."),
        log_level: str = typer.Option("warning", help="uvicorn log level."),
    ) -> None:
        """Serve the streaming API (playback events, accounts); docs at /docs."""
        import uvicorn

        from encore.settings import get_settings

        settings = get_settings()
        uvicorn.run(
            "streaming_api.app:create_app",
            factory=True,
            host=host or settings.api.host,
            port=port or settings.api.port,
            workers=workers,
            log_level=log_level,
            # every request is counted by the caller; per-request log lines cost throughput
            access_log=False,
        )
