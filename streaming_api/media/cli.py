"""``encore content ...``: ingest masters into HLS renditions (heavy imports inside commands)."""

from __future__ import annotations

from pathlib import Path

import typer

content_app = typer.Typer(help="Content ingestion and transcoding.", no_args_is_help=True)


@content_app.command("ingest")
def ingest(
    folder: Path = typer.Argument(..., help="A folder of FLAC or WAV masters, or one master."),
    song_id: str = typer.Option(
        None, "--song-id", help="Link the (one) master to this catalog song, not by its tags."
    ),
    workers: int = typer.Option(
        None, min=1, help="Masters transcoded at once (default: settings.media.ingest_workers)."
    ),
) -> None:
    """Transcode masters to an AES-128 encrypted AAC HLS ladder and record them in the
    catalog. Masters are linked to songs by their title/artist/album tags (created when
    missing) or by --song-id. Same bytes again: "already ingested". Exit 1 if any failed."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from encore.errors import EncoreError
    from encore.settings import get_settings
    from streaming_api.media.ingest import FAILED, find_masters, ingest_folder

    console = Console(stderr=True)
    settings = get_settings()
    try:
        total = len(find_masters(folder))
        with Progress(
            TextColumn("[bold]ingesting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=console,
        ) as progress:
            task = progress.add_task("", total=total)
            report = ingest_folder(
                settings,
                folder,
                song_id=song_id,
                workers=workers,
                progress=lambda outcome: progress.update(
                    task, advance=1, description=f"{outcome.master.name}: {outcome.status}"
                ),
            )
    except EncoreError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=1) from error

    table = Table("master", "result", "song", "reason", title=f"content ingest {folder}")
    for outcome in report.outcomes:
        colour = "red" if outcome.status == FAILED else "green"
        table.add_row(
            str(outcome.master.relative_to(folder) if folder.is_dir() else outcome.master),
            f"[{colour}]{outcome.status}[/{colour}]",
            outcome.song_id or "",
            outcome.reason or "",
        )
    Console().print(table)
    if not report.ok:
        raise typer.Exit(code=1)


@content_app.command("samples")
def samples(
    folder: Path = typer.Argument(..., help="Where to write the masters."),
    count: int = typer.Option(4, min=1, help="How many catalog songs to make masters for."),
    seconds: float = typer.Option(6, min=1, help="Length of each master."),
) -> None:
    """Generate tagged test masters (tones and noise, no download) for the most popular
    catalog songs that have no media yet; `encore content ingest <folder>` links them."""
    from encore.settings import get_settings
    from streaming_api.media.samples import write_catalog_masters

    masters = write_catalog_masters(get_settings(), folder, count=count, seconds=seconds)
    for master in masters:
        typer.echo(str(master))
    if not masters:
        typer.echo("no catalog song without media: load the catalog first (encore catalog load)")
        raise typer.Exit(code=1)
