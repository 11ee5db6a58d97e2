"""``encore lake ...`` and ``encore privacy ...`` (heavy imports inside the commands)."""

from __future__ import annotations

import typer

lake_app = typer.Typer(help="The lake's batch jobs and maintenance.", no_args_is_help=True)
privacy_app = typer.Typer(help="Listeners' data in the lake: erase, export.", no_args_is_help=True)


@lake_app.command("maintain")
def maintain(
    table: list[str] | None = typer.Option(
        None, "--table", help="A table to maintain (layer.name; repeatable); default: all."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Count files and say what would be done; change nothing."
    ),
) -> None:
    """Compact small files, Z-order closed days, vacuum and checkpoint every lake table."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from encore.errors import EncoreError
    from encore.settings import get_settings
    from pipelines.lake import maintenance

    console = Console(stderr=True)
    settings = get_settings()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("lake maintain", total=None)
            report = maintenance.maintain(
                settings,
                table or None,
                progress=lambda name, step: bar.update(task, description=f"{name}: {step}"),
                dry_run=dry_run,
            )
    except EncoreError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    title = "lake maintenance" + (" (dry run: nothing changed)" if dry_run else "")
    out = Table(*maintenance.MaintenanceReport.HEADERS, title=title)
    for row in report.rows():
        out.add_row(*row)
    Console().print(out)


@privacy_app.command("forget")
def forget(
    user: str = typer.Option(..., "--user", help="The listener's user id."),
) -> None:
    """Erase a listener from every user-level lake table, physically, and log the erasure."""
    import json

    from rich.console import Console
    from rich.markup import escape

    from encore.errors import EncoreError
    from encore.settings import get_settings
    from pipelines.lake import privacy

    console = Console(stderr=True)
    try:
        erasure = privacy.forget(get_settings(), user)
    except EncoreError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    for t in erasure.tables:
        line = f"{t.table}: {t.rows_deleted} rows deleted, {len(t.files_removed)} files removed"
        if t.log_compacted:
            line += ", log compacted (history before the erasure dropped)"
        if t.rows_unattributed:
            line += f", {t.rows_unattributed} unparseable rows not attributable"
        if t.unattributed_mentioning_user:
            line += f" ({t.unattributed_mentioning_user} of them contain the id as text: review)"
        console.print(escape(line), soft_wrap=True)
    console.print(f"erasure {erasure.request_id} logged in ops.erasures")
    print(json.dumps(privacy.describe(erasure)))


@privacy_app.command("export")
def export(
    user: str = typer.Option(..., "--user", help="The listener's user id."),
    out: str = typer.Option(None, "--out", help="Write the JSON here instead of to stdout."),
) -> None:
    """Write everything the lake holds about a listener as JSON."""
    import json
    from pathlib import Path

    from rich.console import Console

    from encore.settings import get_settings
    from pipelines.lake import privacy

    document = json.dumps(privacy.export(get_settings(), user), indent=2)
    if out:
        Path(out).write_text(document + "\n")
        Console(stderr=True).print(f"wrote {out}")
    else:
        print(document)
