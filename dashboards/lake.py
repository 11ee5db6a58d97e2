"""Reading the lake for the dashboard: delta-rs into polars, each read cached per version.

A Streamlit page reruns on every click, and the gold tables change when ``encore lake build``
commits (daily). So a read is kept under its table's path and Delta version (with the
columns and days asked for): an unchanged table is never read twice, and a new commit is a
new version, hence a new key, read at once. Opening a table to learn its version reads only
its log. The cache is this process's, shared by every session of the dashboard, bounded
(least recently used out first) and safe across Streamlit's session threads.

A table nothing has created yet reads as empty (with the registry's schema): a lake being
filled is not an error. :func:`lake_status` tells whether there is anything to show at all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from encore.delta import open_delta, read_delta
from encore.settings import Settings
from encore.tables import (
    COUNTRY_DEVICE_BREAKDOWN,
    DAILY_ACTIVE_USERS,
    DAILY_SONG_PLAYS,
    GENRE_TRENDS,
    RETENTION_COHORTS,
    SKIP_RATES,
    Table,
)

if TYPE_CHECKING:
    import polars as pl
    from deltalake import DeltaTable

FILL_COMMAND = "encore lake build"
"""Builds silver and gold from the plays in bronze (the ingestion job writes bronze)."""
DEMO_COMMAND = "make demo"
"""The whole platform end to end on simulated listeners, lake included."""

GOLD_TABLES: tuple[Table, ...] = (
    DAILY_ACTIVE_USERS,
    DAILY_SONG_PLAYS,
    GENRE_TRENDS,
    COUNTRY_DEVICE_BREAKDOWN,
    RETENTION_COHORTS,
    SKIP_RATES,
)
"""The gold tables the dashboard's pages read."""

CACHE_SIZE = 128
"""Reads kept: a few tables x the date ranges analysts flip between."""


@dataclass(frozen=True)
class LakeStatus:
    """Which of the dashboard's gold tables exist in the lake at ``root``."""

    root: str
    present: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def has_data(self) -> bool:
        """Whether there is anything to show: the active-listener table holds rows."""
        return DAILY_ACTIVE_USERS.qualified_name in self.present

    @property
    def fill_hint(self) -> str:
        return (
            f"Build the gold tables with `{FILL_COMMAND}` once plays have reached the lake "
            f"(the ingestion job writes them), or run the whole platform on simulated "
            f"listeners with `{DEMO_COMMAND}`."
        )


def lake_status(settings: Settings) -> LakeStatus:
    """Which gold tables the dashboard reads exist (and hold rows) in the settings' lake."""
    present, missing = [], []
    for table in GOLD_TABLES:
        delta = open_delta(settings, table)
        has_rows = delta is not None and _row_count(delta) > 0
        (present if has_rows else missing).append(table.qualified_name)
    return LakeStatus(settings.lake_root, tuple(present), tuple(missing))


def _row_count(delta: DeltaTable) -> int:
    """Rows of the current version, from the log's per-file statistics (no data read)."""
    import pyarrow as pa

    actions = pa.table(delta.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return 0
    counts = actions.column("num_records").to_pylist()
    # a file without statistics counts as holding rows: there is data to look at
    return sum(1 if count is None else int(count) for count in counts)


@dataclass
class CacheStats:
    """Reads answered from the cache and reads that went to the lake, since start-up."""

    hits: int = 0
    misses: int = 0


_cache: OrderedDict[tuple, pl.DataFrame] = OrderedDict()
_lock = threading.Lock()
_stats = CacheStats()


def cache_stats() -> CacheStats:
    with _lock:
        return CacheStats(_stats.hits, _stats.misses)


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def table_version(settings: Settings, table: Table) -> int | None:
    """The table's current Delta version, None when nothing has created it."""
    delta = open_delta(settings, table)
    return None if delta is None else delta.version()


def read_table(
    settings: Settings,
    table: Table,
    columns: list[str] | None = None,
    first: date | None = None,
    last: date | None = None,
) -> pl.DataFrame:
    """``table``'s rows (its day partitions from ``first`` to ``last``, both included, when
    given) as a polars frame, from the cache when the table has not changed since.

    ``columns`` the table does not have (yet) are left out: a reader that can do without
    one checks the frame's columns. A table nothing has created reads as an empty frame.
    """
    import polars as pl

    delta = open_delta(settings, table)
    if delta is None:
        empty = table.arrow_schema().empty_table()
        return pl.from_arrow(empty.select(columns or table.column_names))
    available = delta.schema().to_arrow().names
    wanted = [name for name in (columns or available) if name in available]
    key = (table.path(settings), delta.version(), tuple(wanted), first, last)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            _stats.hits += 1
            return _cache[key]
        _stats.misses += 1
    day = table.day_column
    filters = []
    if day is not None and first is not None:
        filters.append((day, ">=", first))
    if day is not None and last is not None:
        filters.append((day, "<=", last))
    frame = pl.from_arrow(read_delta(delta, wanted, filters))
    assert isinstance(frame, pl.DataFrame)
    with _lock:
        _cache[key] = frame
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return frame
