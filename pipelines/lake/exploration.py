"""Reading the lake for exploration: a table as a polars frame, and how concentrated a count is.

For notebooks and ad-hoc analysis outside Spark (the ``01_listening_exploration`` notebook):
:func:`lake_frame` reads a registered table through :mod:`encore.delta` and says which
command builds it when it is missing; :func:`concentration` and :func:`top_share` describe a
long tail (how many plays the most played songs, or the most active listeners, take).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from encore.delta import Filters, open_delta, read_delta
from encore.errors import NotFoundError
from encore.settings import Settings
from encore.tables import Table

if TYPE_CHECKING:
    import polars as pl


def lake_frame(
    settings: Settings,
    table: Table,
    columns: list[str] | None = None,
    filters: Filters | None = None,
) -> pl.DataFrame:
    """``table``'s rows matching ``filters`` (delta-rs DNF filters) as a polars frame.

    Raises:
        NotFoundError: the table does not exist at its path yet.
    """
    import polars as pl

    delta = open_delta(settings, table)
    if delta is None:
        raise NotFoundError(
            f"{table.qualified_name} does not exist at {table.path(settings)}; "
            "build it with `encore lake build`"
        )
    return pl.from_arrow(read_delta(delta, columns, filters))


def day_range(last: date, days: int, column: str = "day") -> Filters:
    """Filters for the ``days`` days ending on ``last`` (inclusive) on a date ``column``."""
    from datetime import timedelta

    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    return [(column, ">=", last - timedelta(days=days - 1)), (column, "<=", last)]


def concentration(counts: np.ndarray | list[int]) -> pl.DataFrame:
    """The Lorenz curve of ``counts`` from the largest down: for the top ``n`` subjects
    (songs, listeners), ``subjects_share`` = n / all subjects and ``plays_share`` = their
    counts / all counts; one row per subject, plus (0, 0). Zero counts are subjects too."""
    import polars as pl

    values = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    if len(values) == 0 or values.sum() <= 0:
        raise ValueError("concentration needs at least one positive count")
    cumulative = np.concatenate([[0.0], np.cumsum(values)]) / values.sum()
    subjects = np.arange(len(values) + 1) / len(values)
    return pl.DataFrame({"subjects_share": subjects, "plays_share": cumulative})


def top_share(counts: np.ndarray | list[int], fraction: float) -> float:
    """The share of all counts held by the top ``fraction`` of subjects (at least one),
    e.g. ``top_share(plays_per_song, 0.2)``: the plays of the top 20% of songs."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    values = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    if len(values) == 0 or values.sum() <= 0:
        raise ValueError("top_share needs at least one positive count")
    top = max(1, round(fraction * len(values)))
    return float(values[:top].sum() / values.sum())


def gini(counts: np.ndarray | list[int]) -> float:
    """Gini coefficient of ``counts``: 0 when every subject has the same count, towards 1
    when one subject has them all (twice the area between the diagonal and the Lorenz
    curve of the counts sorted from the smallest up)."""
    values = np.sort(np.asarray(counts, dtype=np.float64))
    n = len(values)
    if n == 0 or values.sum() <= 0:
        raise ValueError("gini needs at least one positive count")
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * values).sum()) / (n * values.sum()) - (n + 1) / n)
