"""``encore catalog ...``: load and inspect the catalog (heavy imports inside commands)."""

from __future__ import annotations

import typer

catalog_app = typer.Typer(help="The media catalog (artists, albums, songs).", no_args_is_help=True)


@catalog_app.command("load")
def load(
    source: str = typer.Option(
        "synthetic", help="synthetic, or hetrec-lastfm-2k (real artists and tags from HetRec)."
    ),
    artists: int = typer.Option(
        None,
        help="Artists to load (default: settings.catalog.artists; HetRec: all of them).",
        show_default=False,
    ),
    songs_per_artist: int = typer.Option(
        None,
        help="Mean songs per artist (default: settings.catalog.songs_per_artist).",
        show_default=False,
    ),
    seed: int = typer.Option(
        None, help="Same seed, same catalog (default: settings.catalog.seed).", show_default=False
    ),
) -> None:
    """Create or update the catalog (artists, albums, songs); running it again changes nothing."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from encore.errors import EncoreError
    from encore.settings import get_settings
    from streaming_api.catalog.load import load_catalog

    console = Console(stderr=True)
    try:
        with Progress(
            "[bold]loading the catalog[/bold]",
            BarColumn(),
            MofNCompleteColumn(),
            "artists",
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("load", total=None)
            report = load_catalog(
                get_settings(),
                source=source,
                artists=artists,
                songs_per_artist=songs_per_artist,
                seed=seed,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except EncoreError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from error
    table = Table(
        "table", "rows", "inserted", "updated", "unchanged",
        title=f"catalog from {report.source} in {report.elapsed_s:.1f} s",
    )  # fmt: skip
    for row in report.rows():
        table.add_row(*row)
    Console().print(table)
