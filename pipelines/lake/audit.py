"""The lake's build: the ordered job list, and the audit every job run appends to.

Input: a day range and ``Settings``. Each job is a function ``run(spark, settings, day) ->
list[RunRecord]`` (one record per table it wrote). Output: the jobs' tables, and one row per
record in ``ops.job_runs`` (``encore.tables.JOB_RUNS``): table, day, Delta version, rows in,
rows out, seconds. Schedule: ``encore lake build [--from DAY --to DAY]``, by hand or daily.

``JOBS`` is the build order: a job comes after every job whose tables it reads (silver after
the dimensions, gold after silver). Each job runs for every day of the range before the next
job starts, so a gold job's rolling window finds silver built for all of its days. A
*snapshot* job (the dimensions) copies its sources' current state: it runs once per build,
recorded under the range's last day. A job that *reads the next day* (sessions: one that
runs past midnight belongs to its start day) also re-runs for the day before the range,
built when the range's first day did not exist yet; its other tables are unaffected (they
count sessions by start day), so only that job goes back.

**Late data**: bronze partitions of earlier days keep receiving rows after their last build
(late clients, replays). :func:`late_days` finds, within ``lake.late_lookback_days`` before
the range, each day whose bronze holds events that silver has not taken in, and
:func:`plan_with_late_days` starts the daily jobs at the earliest of them, so every day from
there to the range's end (rolling windows downstream included) sees them.

**Stages**: each job belongs to one of :data:`STAGES` (dims, silver, gold, training,
features, publish); ``encore lake build --stage S`` runs only the jobs of the stages given,
in the same order, so running the stages one after the other for a day builds exactly
what one whole build does. A build without the silver stage finds its late days in the
audit instead (:func:`rebuilt_days`: silver was rebuilt for a day after this stage's last
run of it).

**Run id**: one build is one ``run_id``, in ``ops.job_runs`` and in ``ops.quality_results``
alike. :func:`build` sets it as the *current run* (a context variable) while its jobs run,
so the quality checks inside a job's write find it without a parameter in every job's
``run(spark, settings, day)``; a job called outside a build gets an id of its own per call.

A job that raises stops the build (the error reaches the caller; nothing downstream of it
runs): the audit holds the runs that finished, each appended as soon as it finished.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from encore.delta import open_delta, read_delta
from encore.errors import ConfigurationError
from encore.settings import Settings
from encore.tables import JOB_RUNS, PLAY_EVENTS, SILVER_PLAYS

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable
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


STAGES: tuple[str, ...] = ("dims", "silver", "gold", "training", "features", "publish")
"""The build's stages, in build order: ``encore lake build --stage S`` runs one or more of
them (the daily DAG runs one per task, so a failure names its stage)."""


@dataclass(frozen=True)
class Job:
    name: str
    target: str
    """``module:function`` of the job's ``run``, imported only when the job runs."""
    stage: str | None = None
    """One of :data:`STAGES` (None: in no stage, so only a whole build runs it)."""
    snapshot: bool = False
    """Copies its sources' current state: runs once per build (for the last day)."""
    reads_next_day: bool = False
    """A day's rows depend on the next day's input too (a session running past midnight
    belongs to the day it started on): a build also re-runs the job for the day before its
    first day, which was built before that next day existed."""
    needs_spark: bool = True
    """False for a job that ignores its ``spark`` argument: a build of such jobs only starts
    no Spark session."""

    def load(self) -> JobFunction:
        module, _, function = self.target.partition(":")
        return getattr(importlib.import_module(module), function)


_GOLD = "pipelines.lake.gold"
JOBS: tuple[Job, ...] = (
    Job("dims", "pipelines.lake.dims:run", "dims", snapshot=True),
    Job("silver_plays", "pipelines.lake.silver:run_plays", "silver"),
    Job("silver_sessions", "pipelines.lake.silver:run_sessions", "silver", reads_next_day=True),
    Job("daily_song_plays", f"{_GOLD}.songs:run_daily_song_plays", "gold"),
    Job("artist_top_songs", f"{_GOLD}.songs:run_artist_top_songs", "gold"),
    Job("skip_rates", f"{_GOLD}.songs:run_skip_rates", "gold"),
    Job("genre_trends", f"{_GOLD}.songs:run_genre_trends", "gold"),
    Job("user_daily_listening", f"{_GOLD}.listeners:run_user_daily_listening", "gold"),
    Job("daily_active_users", f"{_GOLD}.listeners:run_daily_active_users", "gold"),
    Job("retention_cohorts", f"{_GOLD}.listeners:run_retention_cohorts", "gold"),
    Job("country_device_breakdown", f"{_GOLD}.listeners:run_country_device_breakdown", "gold"),
    Job("training_interactions", "pipelines.lake.training:run", "training"),
    Job("listener_activity", "features.jobs:run_listener_activity", "features"),
    Job("song_activity", "features.jobs:run_song_activity", "features"),
    Job("artist_popularity", "features.jobs:run_artist_popularity", "features"),
    # last: only a build whose every table passed its checks publishes (snapshot: the latest)
    Job(
        "publish_top_songs",
        "pipelines.lake.publish:run",
        "publish",
        snapshot=True,
        needs_spark=False,
    ),
)
"""The build order (see the module docstring)."""


def jobs_of(stages: list[str] | None) -> tuple[Job, ...]:
    """The jobs of ``stages`` in build order (``None`` or empty: every job).

    Raises:
        ConfigurationError: a stage is not one of :data:`STAGES`.
    """
    if not stages:
        return JOBS
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigurationError(f"unknown stage(s) {unknown}; known: {', '.join(STAGES)}")
    return tuple(job for job in JOBS if job.stage in stages)


def needs_spark(plan: list[Step]) -> bool:
    """Whether any job of ``plan`` uses its Spark session."""
    return any(step.job.needs_spark for step in plan)


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

    def job_days(job: Job) -> list[date]:
        if job.snapshot:
            return days[-1:]
        return [start - timedelta(days=1), *days] if job.reads_next_day else days

    return [Step(job, day) for job in jobs for day in job_days(job)]


LATE_SLACK = timedelta(minutes=1)
"""How far before silver's newest ``ingested_at`` bronze rows are still looked at: parallel
writers may commit rows out of ``ingested_at`` order, and Delta's file statistics keep
times to the millisecond. Rows already in silver are recognised by id, so the slack costs a
little reading, never a rebuild."""


@dataclass(frozen=True)
class LateDay:
    """An earlier day whose bronze partition holds events silver has not taken in."""

    day: date
    new_events: int
    """Distinct event ids in bronze's partition that ``silver.plays`` lacks (and will keep:
    none of them is on an earlier day)."""
    silver_newest: datetime | None
    """The newest ``ingested_at`` ``silver.plays`` held for the day; None: it held none."""

    def reason(self) -> str:
        held = (
            f"ingested after silver.plays' newest, {self.silver_newest:%Y-%m-%d %H:%M:%S}"
            if self.silver_newest
            else "silver.plays has no rows of the day"
        )
        return f"{self.day}: {self.new_events:,} new events in bronze ({held})"


def newest_ingested(table: DeltaTable, first: date, last: date) -> dict[date, datetime | None]:
    """Per ``event_date`` partition from ``first`` to ``last`` holding files: the newest
    ``ingested_at`` by the files' statistics (the log alone, no data read); None when a
    file has no statistics."""
    import pyarrow as pa

    values: dict[date, list[datetime | None]] = {}
    for f in pa.table(table.get_add_actions(flatten=True)).to_pylist():
        day = f.get("partition.event_date")
        if day is not None and first <= day <= last:
            values.setdefault(day, []).append(f.get("max.ingested_at"))
    return {day: None if None in v else max(v) for day, v in values.items()}


def _event_ids(table: DeltaTable, filters: list[tuple]) -> set[str]:
    return set(read_delta(table, ["event_id"], filters)["event_id"].to_pylist())


def late_days(settings: Settings, start: date) -> list[LateDay]:
    """The days in ``lake.late_lookback_days`` before ``start`` whose bronze partition holds
    events ``silver.plays`` lacks, oldest first.

    Cheap, with delta-rs: file statistics skip a day whose bronze is no newer than its
    silver; otherwise only the ids of bronze rows ingested since silver's newest (less
    :data:`LATE_SLACK`) are read and looked up in silver. Ids silver holds on the day (a
    replayed event) or on an earlier day (de-duplication will drop the row) change nothing
    and do not count, so a replay does not trigger a rebuild every day.
    """
    lookback = settings.lake.late_lookback_days
    bronze = open_delta(settings, PLAY_EVENTS)
    if not lookback or bronze is None:
        return []
    first, last = start - timedelta(days=lookback), start - timedelta(days=1)
    silver = open_delta(settings, SILVER_PLAYS)
    silver_newest = newest_ingested(silver, first, last) if silver else {}
    late = []
    for day, bronze_newest in sorted(newest_ingested(bronze, first, last).items()):
        held = silver_newest.get(day)
        since = held - LATE_SLACK if held else None
        if since and bronze_newest and bronze_newest < since:
            continue
        recent = [("event_date", "=", day)] + ([("ingested_at", ">=", since)] if since else [])
        unseen = _event_ids(bronze, recent)
        for on in ("=", "<"):  # ids silver holds on the day, then on earlier days
            if unseen and silver is not None:
                unseen -= _event_ids(
                    silver, [("event_date", on, day), ("event_id", "in", list(unseen))]
                )
        if unseen:
            late.append(LateDay(day, len(unseen), held))
    return late


@dataclass(frozen=True)
class RebuiltDay:
    """An earlier day whose ``silver.plays`` was rebuilt (late data) after a selected job's
    last run for it: a build of later stages alone must rebuild it too."""

    day: date
    silver_built: datetime
    """When ``silver_plays`` last ran for the day."""

    def reason(self) -> str:
        return f"{self.day}: silver.plays rebuilt at {self.silver_built:%Y-%m-%d %H:%M:%S}"


def rebuilt_days(settings: Settings, start: date, jobs: tuple[Job, ...]) -> list[RebuiltDay]:
    """For a build of stages after silver (``encore lake build --stage gold``, as the daily
    DAG runs it after ``--stage silver``): the days in ``lake.late_lookback_days`` before
    ``start`` whose ``silver_plays`` ran (taking late data in) after the last run of one of
    ``jobs``' daily jobs for that day, or whose daily job never ran; oldest first.

    The audit (``ops.job_runs``) tells: the silver stage has already taken the late events
    in, so comparing bronze with silver (:func:`late_days`) would find nothing.
    """
    daily = {job.name for job in jobs if not job.snapshot}
    lookback = settings.lake.late_lookback_days
    if not daily or not lookback:
        return []
    first, last = start - timedelta(days=lookback), start - timedelta(days=1)
    latest: dict[tuple[str, date], datetime] = {}
    for run in read_runs(settings).to_pylist():
        key = (run["job"], run["day"])
        if first <= run["day"] <= last and (key not in latest or run["finished_at"] > latest[key]):
            latest[key] = run["finished_at"]
    rebuilt = []
    for day in days_between(first, last):
        silver = latest.get(("silver_plays", day))
        if silver is None:
            continue
        built = [latest.get((name, day)) for name in daily]
        if None in built or min(built) < silver:
            rebuilt.append(RebuiltDay(day, silver))
    return rebuilt


def plan_with_late_days(
    start: date, end: date, late: list[LateDay] | list[RebuiltDay], jobs: tuple[Job, ...] = JOBS
) -> list[Step]:
    """The build of ``start`` .. ``end``, its daily jobs starting at the earliest late day
    (snapshot jobs still run once, for ``end``)."""
    return build_plan(min([start] + [d.day for d in late]), end, jobs)


def build(
    spark: SparkSession | None,
    settings: Settings,
    plan: list[Step],
    on_step: Callable[[Step, list[RunRecord]], None] | None = None,
) -> list[RunRecord]:
    """Run ``plan`` in order, appending each run's records to the audit as it finishes.

    ``spark`` may be None when no job of the plan needs it (:func:`needs_spark`).

    ``on_step(step, records)`` is called after each run (progress output). Returns every
    record of the build.

    Raises:
        ConfigurationError: the pseudonym key is the default outside development (the
            analytics tables' listener keys would be computable by anyone).
    """
    from pipelines.lake.pseudonyms import check_pseudonym_secret

    check_pseudonym_secret(settings)
    records: list[RunRecord] = []
    with current_run() as run_id:
        for step in plan:
            done = step.job.load()(spark, settings, step.day)
            append_runs(settings, run_id, step.job.name, done)
            records += done
            if on_step is not None:
                on_step(step, done)
    return records


_current_run: ContextVar[str | None] = ContextVar("encore_lake_current_run", default=None)
"""The run id of the build in progress. A context variable, not a module global: it is
reset when the build ends (also when a job raises), and builds in other threads or tasks
each see their own."""


@contextmanager
def current_run() -> Iterator[str]:
    """A new run id, current (:func:`current_run_id`) until the block ends."""
    run_id = uuid.uuid4().hex
    token = _current_run.set(run_id)
    try:
        yield run_id
    finally:
        _current_run.reset(token)


def current_run_id() -> str:
    """The run id of the build in progress; outside a build, a new one per call."""
    return _current_run.get() or uuid.uuid4().hex


def append_runs(settings: Settings, run_id: str, job: str, records: list[RunRecord]) -> None:
    """Append ``records`` to ``ops.job_runs`` (created on first use)."""
    from pipelines.lake.writing import append_rows  # writing imports RunRecord from here

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
    append_rows(settings, JOB_RUNS, rows)


def read_runs(settings: Settings) -> pa.Table:
    """The whole audit, oldest first (empty, with the audit's schema, before any run)."""
    from pipelines.lake.writing import read_log

    return read_log(settings, JOB_RUNS, "finished_at")
