"""``encore catalog ...``: load and inspect the catalog (heavy imports inside commands)."""

from __future__ import annotations

import typer

catalog_app = typer.Typer(help="The media catalog (artists, albums, songs).", no_args_is_help=True)
