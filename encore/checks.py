"""Data-quality checks a lake table declares in the registry (``Table.checks``).

Declarations only, engine-neutral: ``pipelines.lake.quality`` evaluates them with Spark on
the rows a job is about to write for a day, records every result in ``ops.quality_results``,
and refuses the write (naming the table, the check and an example row) when one fails, so
nothing downstream of a failing table is built or published.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """Base of every check; ``name`` identifies it in results and error messages."""

    @property
    def name(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class NotNull(Check):
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"not_null({', '.join(self.columns)})"


@dataclass(frozen=True)
class Unique(Check):
    """No two rows share these columns' values (a table's key)."""

    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"unique({', '.join(self.columns)})"


@dataclass(frozen=True)
class InRange(Check):
    """``low <= column <= high`` for every non-null value (either bound may be None)."""

    column: str
    low: float | None = None
    high: float | None = None

    @property
    def name(self) -> str:
        return f"in_range({self.column}, {self.low}, {self.high})"


@dataclass(frozen=True)
class OneOf(Check):
    """Every non-null value of ``column`` is one of ``values``."""

    column: str
    values: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"one_of({self.column})"


@dataclass(frozen=True)
class KnownTo(Check):
    """Every value of ``column`` is a key of the dimension ``dimension`` (``layer.name``,
    matched on ``dimension_key``), or the row says it is not (``flag`` is false)."""

    column: str
    dimension: str
    dimension_key: str
    flag: str | None = None
    """A boolean column that is false exactly when the value is unknown; None: must be known."""

    @property
    def name(self) -> str:
        return f"known_to({self.column}, {self.dimension})"


@dataclass(frozen=True)
class Reconciles(Check):
    """The day's rows add up to what the source holds: ``sum(target_expr)`` over the rows
    written equals ``sum(source_expr)`` over ``source`` (``layer.name``) filtered to the day
    by ``source_day_column``. Both are Spark SQL expressions over the tables' columns.
    Example: ``sum(plays)`` of a day of ``gold.daily_song_plays`` is the number of
    ``silver.plays`` rows of the day (``source_expr="1"``)."""

    source: str
    source_day_column: str
    source_expr: str
    target_expr: str
    description: str = ""

    @property
    def name(self) -> str:
        return f"reconciles({self.target_expr} = {self.source}.{self.source_expr})"


@dataclass(frozen=True)
class RowsEqualDistinct(Check):
    """The day's row count equals the number of distinct ``key`` values of ``source`` on the
    day (``source_day_column``) that no earlier day of ``source`` holds: a de-duplicated
    copy lost nothing and kept no duplicate. Example: ``silver.plays`` against the event ids
    of ``bronze.play_events``."""

    source: str
    source_day_column: str
    key: str

    @property
    def name(self) -> str:
        return f"rows_equal_distinct({self.source}.{self.key}, new on the day)"
