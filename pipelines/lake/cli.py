"""``encore lake ...`` and ``encore privacy ...`` (heavy imports inside the commands)."""

from __future__ import annotations

import typer

lake_app = typer.Typer(help="The lake's batch jobs and maintenance.", no_args_is_help=True)
privacy_app = typer.Typer(help="Listeners' data in the lake: erase, export.", no_args_is_help=True)


@lake_app.command("build")
def build(
    from_day: str | None = typer.Option(
        None, "--from", help="First day (YYYY-MM-DD); default: the last day."
    ),
    to_day: str | None = typer.Option(
        None, "--to", help="Last day (YYYY-MM-DD); default: today (UTC)."
    ),
    stage: list[str] | None = typer.Option(
        None,
        "--stage",
        help="Only this stage's jobs (dims, silver, gold, training, features, publish; "
        "repeatable); default: every stage.",
    ),
) -> None:
    """Build or backfill the lake's tables for a range of days, job by job, with progress."""
    from datetime import UTC, date, datetime

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from encore.engines import create_spark_session
    from encore.errors import EncoreError
    from encore.settings import get_settings
    from pipelines.lake import audit
    from pipelines.lake.pseudonyms import check_pseudonym_secret

    console = Console(stderr=True)
    settings = get_settings()
    try:
        end = date.fromisoformat(to_day) if to_day else datetime.now(UTC).date()
        start = date.fromisoformat(from_day) if from_day else end
        audit.days_between(start, end)  # refuse a reversed range before reading the lake
        jobs = audit.jobs_of(stage)
        check_pseudonym_secret(settings)  # before a Spark session starts (build checks too)
        if any(job.stage == "silver" for job in jobs):
            late = audit.late_days(settings, start)
        else:  # silver has taken any late events in already: the audit says what it rebuilt
            late = audit.rebuilt_days(settings, start, jobs)
        plan = audit.plan_with_late_days(start, end, late, jobs)
    except (ValueError, EncoreError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    for day in late:
        console.print(f"late data: {escape(day.reason())}", soft_wrap=True)
    if late:
        console.print(f"the daily jobs run from {late[0].day} to {end}")
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        first = min([start] + [d.day for d in late])
        task = bar.add_task(f"lake build {first} .. {end}", total=len(plan))

        def report(step: audit.Step, records: list[audit.RunRecord]) -> None:
            for r in records:
                bar.console.print(
                    f"  {step.job.name} {r.day} {r.table}: v{r.delta_version}, "
                    f"{r.rows_in:,} in, {r.rows_out:,} out, {r.seconds:.1f} s"
                )
            bar.advance(task)

        try:
            spark = (
                create_spark_session(settings, "encore-lake-build")
                if audit.needs_spark(plan)
                else None
            )
            try:
                audit.build(spark, settings, plan, on_step=report)
            finally:
                if spark is not None:
                    spark.stop()
        except EncoreError as error:
            console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
            raise typer.Exit(code=1) from None


@lake_app.command("check")
def check(
    day: str = typer.Option(..., "--day", help="The day to check (YYYY-MM-DD)."),
    stage: list[str] | None = typer.Option(
        None,
        "--stage",
        help="Check the tables of this stage (repeatable); default: silver and gold.",
    ),
) -> None:
    """Run the daily tables' quality checks on a day's rows as written; exit 1 on a failure.

    One line per table; a failed check prints a line naming the table, the day, the check
    and an example row. Results go to ops.quality_results under a run id of their own.
    """
    from datetime import date

    from rich.console import Console
    from rich.markup import escape

    from encore.engines import create_spark_session
    from encore.errors import EncoreError
    from encore.settings import get_settings
    from pipelines.lake import quality

    console = Console(stderr=True)
    settings = get_settings()
    try:
        checked_day = date.fromisoformat(day)
        quality.daily_tables(stage)  # refuse an unknown stage before a Spark session starts
        spark = create_spark_session(settings, "encore-lake-check")
        try:
            run_id, verdicts = quality.check_written(spark, settings, checked_day, stage)
        finally:
            spark.stop()
    except (ValueError, EncoreError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    for verdict in verdicts:
        console.print(escape(verdict.describe()), soft_wrap=True, highlight=False)
    failures = [line for verdict in verdicts for line in verdict.failures()]
    for line in failures:
        console.print(escape(line), soft_wrap=True, highlight=False, style="red")
    console.print(f"results in ops.quality_results, run {run_id}")
    if failures:
        raise typer.Exit(code=1)


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
    """Erase a listener from every user-level lake table, physically, and log the erasure.

    An id the lake does not hold (unknown, or already erased) is no error: the command says
    so and exits 0, and the request is still logged.
    """
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
        line = f"{t.table}: {t.rows_deleted} rows deleted"
        if t.rows_blanked:
            line += f", {t.rows_blanked} quality examples blanked"
        line += f", {len(t.files_removed)} files removed"
        if t.log_compacted:
            line += ", log compacted (history before the erasure dropped)"
        if t.rows_unattributed:
            line += f", {t.rows_unattributed} unparseable rows not attributable"
        if t.unattributed_mentioning_user:
            line += f" ({t.unattributed_mentioning_user} of them contain the id as text: review)"
        console.print(escape(line), soft_wrap=True)
    if erasure.online_features_deleted:
        deleted = erasure.online_features_deleted
        console.print(f"{privacy.ONLINE_FEATURES}: {deleted} entries deleted")
    console.print(f"erasure {erasure.request_id} logged in ops.erasures")
    print(json.dumps(privacy.describe(erasure)))


@privacy_app.command("export")
def export(
    user: str = typer.Option(..., "--user", help="The listener's user id."),
    out: str = typer.Option(None, "--out", help="Write the JSON here instead of to stdout."),
) -> None:
    """Write everything the lake holds about a listener as JSON (every table's list empty,
    exit 0, for an id the lake does not hold)."""
    import json
    from pathlib import Path

    from rich.console import Console
    from rich.markup import escape

    from encore.errors import EncoreError
    from encore.settings import get_settings
    from pipelines.lake import privacy

    console = Console(stderr=True)
    try:
        document = json.dumps(privacy.export(get_settings(), user), indent=2)
    except EncoreError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(code=1) from None
    if out:
        Path(out).write_text(document + "\n")
        console.print(f"wrote {out}")
    else:
        print(document)


# the request queue's commands (request, queue, process) live in their own module
from pipelines.lake.privacy_cli import register as _register_queue  # noqa: E402

_register_queue(privacy_app)
