"""``encore lake ...`` and ``encore privacy ...`` (heavy imports inside the commands)."""

from __future__ import annotations

import typer

lake_app = typer.Typer(help="The lake's batch jobs and maintenance.", no_args_is_help=True)
privacy_app = typer.Typer(help="Listeners' data in the lake: erase, export.", no_args_is_help=True)
