"""The lake step of ``encore demo``: silver, gold, quality and top songs from the demo's bronze.

Input: ``bronze.play_events`` as the ingestion step left it, and the catalog in PostgreSQL
(the dimensions job copies it). Output: every lake table built for each day bronze holds,
PostgreSQL's ``artist_top_songs`` published, ``logs/lake-build.log`` under ENCORE_HOME and a
printed summary (``pipelines.lake.report``). Schedule: once, in ``encore demo``, after the
ingestion step; a minute or two on two cores, most of it Spark's start-up.

The build runs as ``encore lake build --from FIRST --to LAST`` in a child process, exactly
what a person or the DAG runs: its Spark session (a JVM) lives and dies with the child, and
this process, which may hold other sessions or none, never starts one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from datetime import UTC, date, datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from encore import services
from encore.errors import EncoreError
from encore.settings import Settings, settings_env
from pipelines.lake import report

console = Console(stderr=True)

LOG_NAME = "lake-build"
TOP_SONGS = 10
WORST_GENRES = 5
LOG_TAIL_LINES = 20


def build_command(first: date, last: date) -> list[str]:
    """``encore lake build`` for ``first`` .. ``last``, by this environment's ``encore``."""
    encore = Path(sys.executable).with_name("encore")
    return [str(encore), "lake", "build", "--from", first.isoformat(), "--to", last.isoformat()]


def build_env(settings: Settings) -> dict[str, str]:
    """Our environment with ``settings`` made explicit (tests set some in code), in
    development mode: the embedded platform's default pseudonym secret is refused otherwise."""
    return dict(os.environ) | settings_env(settings) | {"ENCORE_DEVELOPMENT": "true"}


def _last_line(log: Path) -> str:
    """The log's last non-blank line, for the spinner (the build prints one per table)."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, log.stat().st_size - 4096))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def _tail(log: Path, n: int) -> list[str]:
    with open(log, encoding="utf-8", errors="replace") as handle:
        return list(deque(handle, maxlen=n))


def build_lake(settings: Settings, first: date, last: date) -> Path:
    """Run ``encore lake build`` for ``first`` .. ``last`` in a child process, its output to
    ``logs/lake-build.log`` (replaced), with a transient spinner; returns the log's path.

    Raises:
        EncoreError: the build failed (its log's last lines are printed first).
    """
    log = services.log_file(settings, LOG_NAME)
    log.parent.mkdir(parents=True, exist_ok=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with (
        open(log, "wb") as output,
        Progress(*columns, console=console, transient=True) as bar,
    ):
        process = subprocess.Popen(
            build_command(first, last),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=build_env(settings),
        )
        task = bar.add_task("  building the lake", total=None)
        try:
            while process.poll() is None:
                latest = _last_line(log)[:70]
                bar.update(task, description=f"  building the lake: {latest}".rstrip(": "))
                time.sleep(0.5)
        finally:
            if process.poll() is None:  # interrupted: do not leave the build running alone
                process.terminate()
                process.wait()
    if process.returncode != 0:
        for line in _tail(log, LOG_TAIL_LINES):
            console.print(f"  | {line.rstrip()}", markup=False, highlight=False)
        raise EncoreError(f"encore lake build failed (exit {process.returncode}); log: {log}")
    return log


def published_top_songs(settings: Settings) -> int:
    """Rows in PostgreSQL's ``artist_top_songs`` (what ``publish_top_songs`` left there)."""
    from sqlalchemy import text

    from encore.db import create_engine

    engine = create_engine(settings, pool_size=1)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM artist_top_songs")).scalar_one()
    finally:
        engine.dispose()


def print_summary(settings: Settings, last: date, since: datetime) -> None:
    """What the build since ``since`` wrote and checked, and ``last``'s headline numbers."""
    runs = Table("table", title="lake build (ops.job_runs)")
    for number in ("days", "rows out", "seconds"):
        runs.add_column(number, justify="right")
    for r in report.runs_summary(settings, since):
        runs.add_row(r.table, str(r.runs), f"{r.rows_out:,}", f"{r.seconds:.1f}")
    console.print(runs)

    checks = report.quality_summary(settings, since)
    passed, failed = sum(c.passed for c in checks), sum(c.failed for c in checks)
    console.print(f"  quality checks: {passed} passed, {failed} failed, over {len(checks)} tables")
    for c in checks:
        if c.failed:
            failed_checks = escape(", ".join(c.failed_checks))
            console.print(f"  [red]failed[/red] {c.table}: {failed_checks}")

    top = Table("#", "song", "artist", title=f"top songs of {last}")
    top.add_column("plays", justify="right")
    for rank, song in enumerate(report.top_songs(settings, last, TOP_SONGS), start=1):
        # catalog text is data, not rich markup
        name, artist = escape(song.title or song.song_id), escape(song.artist or "-")
        top.add_row(str(rank), name, artist, f"{song.plays:,}")
    console.print(top)

    active = report.active_users(settings, last)
    if active is not None:
        console.print(
            f"  listeners on {last}: DAU {active.dau:,}, WAU {active.wau:,}, MAU {active.mau:,}"
        )
    worst = report.worst_skip_rates(settings, last, WORST_GENRES, scope="genre")
    genres = ", ".join(f"{g.subject_id} {g.skip_rate:.0%} of {g.plays:,}" for g in worst)
    console.print(f"  most skipped genres: {escape(genres) or '-'}")
    console.print(
        f"  gold.artist_top_songs published to PostgreSQL: "
        f"{published_top_songs(settings):,} rows in artist_top_songs"
    )


def run_demo_step(settings: Settings) -> None:
    """Build the lake for every day bronze holds, then print what it holds."""
    started = time.monotonic()
    days = report.bronze_days(settings)
    if not days:
        console.print("  bronze.play_events holds no events: nothing to build")
        return
    first, last = days[0], days[-1]
    since = datetime.now(UTC)
    log = build_lake(settings, first, last)
    built = (last - first).days + 1
    console.print(
        f"  built {built} day(s), {first} .. {last} ({len(days)} with events in bronze); log: {log}"
    )
    print_summary(settings, last, since)
    console.print(f"  lake step took {time.monotonic() - started:.0f} s")
