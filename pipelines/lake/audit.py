"""The lake's build: the ordered job list, and the audit every job run appends to.

Input: a day range and ``Settings``. Each job is a function ``run(spark, settings, day) ->
list[RunRecord]`` (one record per table it wrote). Output: the jobs' tables, and one row per
record in ``ops.job_runs`` (``encore.tables.JOB_RUNS``): table, day, Delta version, rows in,
rows out, seconds. Schedule: ``encore lake build [--from DAY --to DAY]``, by hand or daily.

``JOBS`` is the build order: a job comes after every job whose tables it reads (silver after
the dimensions, gold after silver). Each job runs for every day of the range before the next
job starts, so a gold job's rolling window finds silver built for all of its days. A
*snapshot* job (the dimensions) copies its sources' current state: it runs once per build,
recorded under the range's last day.

A job that raises stops the build (the error reaches the caller; nothing downstream of it
runs): the audit holds the runs that finished, each appended as soon as it finished.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from encore.errors import ConfigurationError
from encore.settings import Settings
from encore.tables import JOB_RUNS

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class RunRecord:
    """What one job run did to one table."""

    table: str
    """``layer.name`` of the table written."""
    day: date
    delta_version: int
    """The table's version after the run."""
    rows_in: int
    """Rows the job read from its sources for this table."""
    rows_out: int
    """Rows the table holds for ``day`` after the run (the whole table for a snapshot)."""
    seconds: float


JobFunction = Callable[["SparkSession", Settings, date], list[RunRecord]]


@dataclass(frozen=True)
class Job:
    name: str
    target: str
    """``module:function`` of the job's ``run``, imported only when the job runs."""
    snapshot: bool = False
    """Copies its sources' current state: runs once per build (for the last day)."""

    def load(self) -> JobFunction:
        module, _, function = self.target.partition(":")
        return getattr(importlib.import_module(module), function)


JOBS: tuple[Job, ...] = (
    Job("dims", "pipelines.lake.dims:run", snapshot=True),
    Job("silver_plays", "pipelines.lake.silver:run_plays"),
    Job("silver_sessions", "pipelines.lake.silver:run_sessions"),
    Job("daily_song_plays", "pipelines.lake.gold.songs:run_daily_song_plays"),
    Job("artist_top_songs", "pipelines.lake.gold.songs:run_artist_top_songs"),
    Job("skip_rates", "pipelines.lake.gold.songs:run_skip_rates"),
    Job("genre_trends", "pipelines.lake.gold.songs:run_genre_trends"),
    Job("user_daily_listening", "pipelines.lake.gold.listeners:run_user_daily_listening"),
    Job("daily_active_users", "pipelines.lake.gold.listeners:run_daily_active_users"),
    Job("retention_cohorts", "pipelines.lake.gold.listeners:run_retention_cohorts"),
    Job("country_device_breakdown", "pipelines.lake.gold.listeners:run_country_device_breakdown"),
    Job("training_interactions", "pipelines.lake.training:run"),
    # last: only a build whose every table passed its checks publishes (snapshot: the latest)
    Job("publish_top_songs", "pipelines.lake.publish:run", snapshot=True),
)
"""The build order (see the module docstring)."""


@dataclass(frozen=True)
class Step:
    job: Job
    day: date


def days_between(start: date, end: date) -> list[date]:
    """``start`` to ``end``, both included.

    Raises:
        ConfigurationError: ``start`` is after ``end``.
    """
    if start > end:
        raise ConfigurationError(f"the range starts after it ends: {start} > {end}")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def build_plan(start: date, end: date, jobs: tuple[Job, ...] = JOBS) -> list[Step]:
    """The (job, day) runs of a build, in order."""
    days = days_between(start, end)
    return [Step(job, day) for job in jobs for day in (days[-1:] if job.snapshot else days)]


def build(
    spark: SparkSession,
    settings: Settings,
    plan: list[Step],
    on_step: Callable[[Step, list[RunRecord]], None] | None = None,
) -> list[RunRecord]:
    """Run ``plan`` in order, appending each run's records to the audit as it finishes.

    ``on_step(step, records)`` is called after each run (progress output). Returns every
    record of the build.
    """
    run_id = uuid.uuid4().hex
    records: list[RunRecord] = []
    for step in plan:
        done = step.job.load()(spark, settings, step.day)
        append_runs(settings, run_id, step.job.name, done)
        records += done
        if on_step is not None:
            on_step(step, done)
    return records


def append_runs(settings: Settings, run_id: str, job: str, records: list[RunRecord]) -> None:
    """Append ``records`` to ``ops.job_runs`` (created on first use), with delta-rs: a few
    rows need no Spark job."""
    import pyarrow as pa
    from deltalake import write_deltalake

    if not records:
        return
    finished_at = datetime.now(UTC)
    rows = [
        {
            "run_id": run_id,
            "job": job,
            "table_name": r.table,
            "day": r.day,
            "delta_version": r.delta_version,
            "rows_in": r.rows_in,
            "rows_out": r.rows_out,
            "seconds": r.seconds,
            "finished_at": finished_at,
        }
        for r in records
    ]
    write_deltalake(
        JOB_RUNS.path(settings),
        pa.Table.from_pylist(rows, schema=JOB_RUNS.arrow_schema()),
        mode="append",
        storage_options=settings.lake.storage_options or None,
    )


def read_runs(settings: Settings) -> pa.Table:
    """The whole audit, oldest first (empty, with the audit's schema, before any run)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(
            JOB_RUNS.path(settings), storage_options=settings.lake.storage_options or None
        )
    except TableNotFoundError:
        return JOB_RUNS.arrow_schema().empty_table()
    return table.to_pyarrow_table().sort_by([("finished_at", "ascending")])
