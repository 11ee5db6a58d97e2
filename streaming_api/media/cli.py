"""``encore content ...``: ingest masters into HLS renditions (heavy imports inside commands)."""

from __future__ import annotations

import typer

content_app = typer.Typer(help="Content ingestion and transcoding.", no_args_is_help=True)
