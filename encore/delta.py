"""Reading lake tables with delta-rs outside Spark: one way for every Python reader (the
CLI's ops and privacy commands, the lake report, the training dataset, the demo).

Why not ``DeltaTable.to_pyarrow_table()`` as it comes: by default delta-rs hands pyarrow a
filesystem implemented in Python over its Rust object store (``PyFileSystem``), which
Arrow's I/O threads call back into. A process that read a table that way now and then
aborts at interpreter exit, its work done, with ``terminate called without an active
exception`` (SIGABRT, exit 134; delta-io/delta-rs#2184, apache/arrow#34314): on this
machine 12 of 160 runs of a two-table read under CPU load, and once in the clean-clone
suite (``encore privacy export``). The same reads through pyarrow's native filesystem: 0 of
200. So local tables are read through the native one. Object stores keep delta-rs's
filesystem, because only it applies ``lake.storage_options`` (endpoint, credentials).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from encore.settings import Settings
from encore.tables import Table

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs
    from deltalake import DeltaTable

Filters = list[tuple]
"""delta-rs's DNF filters, e.g. ``[("day", "=", date(2026, 11, 23))]``."""


def open_delta(settings: Settings, table: Table) -> DeltaTable | None:
    """``table``'s current version, or None when nothing has created it yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(table.path(settings), storage_options=_options(settings))
    except TableNotFoundError:
        return None


def delta_dataset(delta: DeltaTable) -> ds.Dataset:
    """The table's current files as a pyarrow dataset, local files through pyarrow's own
    filesystem (see the module's docstring)."""
    return delta.to_pyarrow_dataset(filesystem=_native_filesystem(delta))


def read_delta(
    delta: DeltaTable, columns: list[str] | None = None, filters: Filters | None = None
) -> pa.Table:
    """The table's rows matching ``filters`` (partition filters prune files first)."""
    return delta.to_pyarrow_table(
        columns=columns, filters=filters or None, filesystem=_native_filesystem(delta)
    )


def read_lake_table(
    settings: Settings,
    table: Table,
    columns: list[str] | None = None,
    filters: Filters | None = None,
) -> pa.Table:
    """:func:`read_delta` by registry entry; an empty table with the registry's schema (and
    ``columns``) when nothing has created it yet."""
    delta = open_delta(settings, table)
    if delta is None:
        return table.arrow_schema().empty_table().select(columns or table.column_names)
    return read_delta(delta, columns, filters)


def _native_filesystem(delta: DeltaTable) -> pafs.FileSystem | None:
    import pyarrow.fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(delta.table_uri)
    if not isinstance(filesystem, pafs.LocalFileSystem):
        return None  # delta-rs's own, which honours the storage options
    return pafs.SubTreeFileSystem(root, filesystem)


def _options(settings: Settings) -> dict[str, str] | None:
    return settings.lake.storage_options or None
