"""Data quality: evaluate a table's declared checks (``encore.checks``) on a day's rows.

Input: the day's rows a job is about to write (``writing.replace_day`` hands them over,
conformed and cached), the table's ``checks``, and what the checks compare with: the
dimensions of a ``KnownTo``, the source of a ``Reconciles`` or ``RowsEqualDistinct``.
Output: one row per check in ``ops.quality_results`` (``encore.tables.QUALITY_RESULTS``:
the build's run id, table, day, check, passed, rows checked, failing rows, an example), then a
:class:`QualityError` naming the table, the day, every failing check and an example row
when any failed, so the day is not written and nothing after it in the build runs (the
publish step is last). Schedule: inside every daily job's write, in ``encore lake build``;
and again on the rows as written (:func:`check_written`, ``encore lake check --day D``),
the daily DAG's gate before it publishes.

One Spark action per table and day: every row check becomes a failure flag per row (a
window count for ``Unique``, a left join to the dimension's keys for ``KnownTo``), and one
aggregation counts each flag's rows and keeps the smallest failing row as JSON (the
example, deterministic); a reconciliation's source total is a one-row aggregate cross-joined
to it, so a single ``collect`` brings every figure back.

Examples never hold a raw user id: a ``user_id`` in an example row is replaced by its
``listener_key`` (``pipelines.lake.pseudonyms``), in the results table and in the error. A
pseudonym still names a listener: erasing one (``pipelines.lake.privacy.forget``) blanks
the examples that mention them.
"""

from __future__ import annotations

import functools
import json
import math
import operator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from encore.checks import (
    Check,
    InRange,
    KnownTo,
    NotNull,
    OneOf,
    Reconciles,
    RowsEqualDistinct,
    Unique,
)
from encore.errors import EncoreError
from encore.settings import Settings
from encore.tables import QUALITY_RESULTS, TABLES, Table, get_table
from pipelines.lake.audit import current_run, current_run_id, jobs_of
from pipelines.lake.pseudonyms import listener_key

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession


class QualityError(EncoreError):
    """A table's check failed: the message names the table, the check and an example row."""


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one table's day."""

    check: str
    passed: bool
    rows_checked: int
    failing_rows: int
    """Rows that fail a row check; for a reconciliation, how far the totals are apart."""
    example: str | None
    """A failing row as JSON (ids pseudonymised), or a reconciliation's two totals."""
    reconciliation: bool = False

    def describe(self) -> str:
        if self.passed:
            return f"{self.check}: passed"
        if self.reconciliation:
            return f"{self.check}: the totals differ by {self.failing_rows:,}: {self.example}"
        return (
            f"{self.check}: {self.failing_rows:,} of {self.rows_checked:,} rows fail, "
            f"e.g. {self.example}"
        )


def enforce(
    spark: SparkSession, settings: Settings, table: Table, rows: DataFrame, day: date
) -> None:
    """Run ``table.checks`` on ``rows`` (the day's rows about to be written), record every
    result in ``ops.quality_results``, and raise if any check failed.

    Raises:
        QualityError: a check failed (every failing check is in the message).
    """
    if not table.checks:
        return
    results = evaluate(spark, settings, table, rows, day)
    append_results(settings, table, day, results)
    failed = [r for r in results if not r.passed]
    if failed:
        raise QualityError(
            f"{table.qualified_name} {day}: {len(failed)} of {len(results)} quality checks "
            f"failed, the day was not written: " + "; ".join(r.describe() for r in failed)
        )


CHECKED_STAGES = ("silver", "gold")
"""What ``encore lake check`` checks by default: the tables the top songs are built from."""


@dataclass(frozen=True)
class WrittenDay:
    """The verdict of a table's checks on one day's rows as they are in the lake."""

    table: str
    day: date
    rows: int
    results: list[CheckResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def describe(self) -> str:
        """One line: the table, the day, its rows and how many checks passed."""
        held = f"{self.rows:,} rows" if self.rows else "no rows for the day"
        passed = sum(r.passed for r in self.results)
        return f"{self.table} {self.day}: {held}, {passed} of {len(self.results)} checks passed"

    def failures(self) -> list[str]:
        """One line per failed check, naming the table, the day, the check and an example."""
        lines = []
        for r in self.results:
            if r.passed:
                continue
            if r.reconciliation:
                what = f"the totals differ by {r.failing_rows:,}: {r.example}"
            else:
                what = f"{r.failing_rows:,} of {r.rows_checked:,} rows, example {r.example}"
            lines.append(f"quality check failed: {self.table} {self.day} {r.check}: {what}")
        return lines


def daily_tables(stages: list[str] | None = None) -> list[Table]:
    """The tables with checks that ``stages``' jobs write a day of (default
    :data:`CHECKED_STAGES`), in build order.

    Raises:
        ConfigurationError: an unknown stage.
    """
    writers = [job.target for job in jobs_of(list(stages or CHECKED_STAGES))]
    return [
        table
        for writer in writers
        for table in TABLES.values()
        if table.writer == writer and table.checks and table.day_column
    ]


def check_written(
    spark: SparkSession, settings: Settings, day: date, stages: list[str] | None = None
) -> tuple[str, list[WrittenDay]]:
    """Evaluate every check of :func:`daily_tables` on ``day``'s rows as the lake holds them
    (the gate before publishing: what was written, not what a job was about to write), and
    append the results to ``ops.quality_results`` under a run id of their own.

    A table without rows for the day is checked all the same: its row checks pass, and a
    reconciliation with its source fails when the source has the day (``silver.plays``
    empty while bronze holds the day's events is a failure; a quiet day with no events is
    not). Returns the run id and one verdict per table.
    """
    from pyspark.sql import functions as F

    from pipelines.lake.writing import read_table

    verdicts = []
    with current_run() as run_id:
        for table in daily_tables(stages):
            rows = read_table(spark, settings, table).where(F.col(table.day_column) == F.lit(day))
            results = evaluate(spark, settings, table, rows, day)
            append_results(settings, table, day, results)
            verdicts.append(WrittenDay(table.qualified_name, day, results[0].rows_checked, results))
    return run_id, verdicts


def evaluate(
    spark: SparkSession, settings: Settings, table: Table, rows: DataFrame, day: date
) -> list[CheckResult]:
    """Every check of ``table.checks`` on ``rows``, in declaration order (one Spark action)."""
    from pyspark.sql import functions as F

    columns = rows.columns
    example = F.to_json(F.struct(*[F.col(c) for c in columns]), {"ignoreNullFields": "false"})
    frame, flags, totals, sources = rows, {}, {}, []
    for n, check in enumerate(table.checks):
        if isinstance(check, Reconciles | RowsEqualDistinct):
            totals[n] = _target_total(check)
            sources.append(_source_total(spark, settings, check, day))
            continue
        if isinstance(check, KnownTo):
            frame = frame.join(
                _dimension_keys(spark, settings, check, n),
                F.col(check.column) == F.col(f"_key_{n}"),
                "left",
            )
        flags[n] = F.coalesce(_row_fails(check, n), F.lit(False))
    flagged = frame.select(*columns, *[flag.alias(f"_fails_{n}") for n, flag in flags.items()])
    aggregates = [F.count(F.lit(1)).alias("_rows")]
    for n in flags:
        fails = F.col(f"_fails_{n}")
        aggregates += [
            F.sum(fails.cast("long")).alias(f"_failing_{n}"),
            F.min(F.when(fails, example)).alias(f"_example_{n}"),
        ]
    aggregates += [total.alias(f"_target_{n}") for n, total in totals.items()]
    figures = flagged.agg(*aggregates)
    for n, source in zip(totals, sources, strict=True):
        figures = figures.crossJoin(source.select(F.col("total").alias(f"_source_{n}")))
    got = figures.collect()[0].asDict()
    return [_result(settings, check, n, got, day) for n, check in enumerate(table.checks)]


def _row_fails(check: Check, n: int) -> Column:
    """True for a row that fails ``check`` (null when undecided: counted as passing)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    match check:
        case NotNull(columns=names):
            return functools.reduce(operator.or_, [F.col(c).isNull() for c in names])
        case Unique(columns=names):
            return F.count(F.lit(1)).over(Window.partitionBy(*names)) > 1
        case InRange(column=name, low=low, high=high):
            value = F.col(name)
            outside = F.isnan(value)  # a 0/0 ratio is out of every range
            if low is not None:
                outside = outside | (value < F.lit(low))
            if high is not None:
                outside = outside | (value > F.lit(high))
            return value.isNotNull() & outside
        case OneOf(column=name, values=values):
            return F.col(name).isNotNull() & ~F.col(name).isin(*values)
        case KnownTo(flag=flag):
            known = F.col(f"_known_{n}").isNotNull()
            if flag is None:
                return ~known
            # the flag must tell the truth either way: known rows true, unknown rows false
            return F.col(flag).isNull() | (F.col(flag) != known)
    raise TypeError(f"no row test for the check {check!r}")


def _dimension_keys(spark: SparkSession, settings: Settings, check: KnownTo, n: int) -> DataFrame:
    from pyspark.sql import functions as F

    from pipelines.lake.writing import read_table

    dimension = read_table(spark, settings, get_table(check.dimension))
    return (
        dimension.select(F.col(check.dimension_key).alias(f"_key_{n}"))
        .where(F.col(f"_key_{n}").isNotNull())
        .distinct()
        .withColumn(f"_known_{n}", F.lit(True))
    )


def _target_total(check: Reconciles | RowsEqualDistinct) -> Column:
    from pyspark.sql import functions as F

    if isinstance(check, RowsEqualDistinct):
        return F.count(F.lit(1))
    return F.coalesce(F.sum(F.expr(check.target_expr)), F.lit(0))


def _source_total(
    spark: SparkSession, settings: Settings, check: Reconciles | RowsEqualDistinct, day: date
) -> DataFrame:
    """One row, one column ``total``: what the source says the day's rows add up to."""
    from pyspark.sql import functions as F

    from pipelines.lake.writing import read_table

    source = read_table(spark, settings, get_table(check.source))
    on_day = source.where(F.col(check.source_day_column) == F.lit(day))
    if isinstance(check, Reconciles):
        return on_day.agg(F.coalesce(F.sum(F.expr(check.source_expr)), F.lit(0)).alias("total"))
    earlier = source.where(F.col(check.source_day_column) < F.lit(day)).select(check.key)
    new = on_day.select(check.key).distinct().join(earlier, check.key, "left_anti")
    return new.agg(F.count(F.lit(1)).alias("total"))


def _result(settings: Settings, check: Check, n: int, got: dict, day: date) -> CheckResult:
    rows = got["_rows"]
    if isinstance(check, Reconciles | RowsEqualDistinct):
        target, source = got[f"_target_{n}"], got[f"_source_{n}"]
        if math.isclose(target, source, rel_tol=1e-9, abs_tol=1e-9):
            return CheckResult(check.name, True, rows, 0, None, reconciliation=True)
        totals = {"rows": target, f"{check.source} on {day}": source}
        difference = round(abs(target - source))
        return CheckResult(check.name, False, rows, difference, json.dumps(totals), True)
    failing = got[f"_failing_{n}"] or 0
    example = got[f"_example_{n}"]
    return CheckResult(
        check.name,
        failing == 0,
        rows,
        failing,
        pseudonymise(settings, example) if failing else None,
    )


def pseudonymise(settings: Settings, example: str) -> str:
    """``example`` (a row as JSON) with its ``user_id`` replaced by ``listener_key``."""
    row = json.loads(example)
    if row.get("user_id") is None:
        return example
    return json.dumps(
        {
            ("listener_key" if k == "user_id" else k): (
                listener_key(settings, v) if k == "user_id" else v
            )
            for k, v in row.items()
        }
    )


def append_results(settings: Settings, table: Table, day: date, results: list[CheckResult]) -> None:
    """Append ``results`` to ``ops.quality_results`` (created on first use), under the
    current build's run id (:func:`pipelines.lake.audit.current_run_id`)."""
    from pipelines.lake.writing import append_rows

    run_id, checked_at = current_run_id(), datetime.now(UTC)
    rows = [
        {
            "run_id": run_id,
            "table_name": table.qualified_name,
            "day": day,
            "check_name": r.check,
            "passed": r.passed,
            "rows_checked": r.rows_checked,
            "failing_rows": r.failing_rows,
            "example": r.example,
            "checked_at": checked_at,
        }
        for r in results
    ]
    append_rows(settings, QUALITY_RESULTS, rows)


def read_results(settings: Settings) -> pa.Table:
    """Every recorded result, oldest first (empty, with the table's schema, before any)."""
    from pipelines.lake.writing import read_log

    return read_log(settings, QUALITY_RESULTS, "checked_at")
