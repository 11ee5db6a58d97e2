"""Lake maintenance: compact small files, Z-order closed days, vacuum, checkpoint the log.

Input: every table of the registry (``encore.tables.TABLES``) or the ones named; tables not
created yet are skipped. Output: the tables rewritten in place (same rows, fewer files) and a
:class:`MaintenanceReport`. Schedule: any time, also while the Flink job appends (hourly or
nightly; ``encore lake maintain``).

Why delta-rs and not Spark's ``OPTIMIZE``: both commit a rewrite with ``dataChange=false``,
which Delta's conflict rules let through beside blind appends (the stream's one commit a
second never conflicts with it; the tests compact from a stale snapshot after an append to
prove it). delta-rs needs no JVM, no session start-up and no shuffle to bin-pack files, and it
is the library the stream writes with, so the protocol features always match. A concurrent
``DELETE`` (``encore privacy forget``) does conflict with a rewrite of the same files: the
later of the two fails and must be re-run, as with Spark.

Per table, in this order:

1. **Z-order** (tables whose registry entry declares ``extra["zorder_by"]``, partitioned by a
   date): each day once, after it has closed, i.e. a partition dated before today that still
   holds a file written while the day was open. Z-order rewrites the whole partition, so doing
   it to today's partition on every run would rewrite the day each time; the open day is only
   compacted. Late events reaching a Z-ordered day are merged with its tail by compaction.
2. **Compaction** to ``lake.target_file_mb``: files below the target are bin-packed per
   partition; a partition with one small file is left alone, so a second run is a no-op.
3. **Vacuum** with ``lake.vacuum_retention_hours`` (``full``: also files a crashed writer left
   unreferenced). Readers of older versions and writers with files written but not yet
   committed need them until then: the setting is the floor, never lowered here.
4. **Checkpoint** the log at its latest version (readers then replay no JSON commits) and
   drop log entries older than the table's ``delta.logRetentionDuration`` (30 days default).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from encore.tables import TABLES, Table, get_table

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from deltalake import DeltaTable

    from encore.settings import Settings

Progress = Callable[[str, str], None]
"""Called with (table, step) as each step starts."""


@dataclass(frozen=True)
class FileCount:
    files: int
    bytes: int


@dataclass
class TableMaintenance:
    """What maintenance found and did to one table."""

    table: str
    exists: bool = True
    version_before: int | None = None
    version_after: int | None = None
    active_before: FileCount | None = None
    """Data files the latest version references."""
    active_after: FileCount | None = None
    stored_before: FileCount | None = None
    """Data files on storage, referenced or not (what vacuum shrinks)."""
    stored_after: FileCount | None = None
    zordered_partitions: list[str] = field(default_factory=list)
    compacted_files_removed: int = 0
    """Files compaction rewrote (in a dry run: the small files it would rewrite)."""
    compacted_files_added: int = 0
    vacuumed_files: int = 0
    checkpoint_version: int | None = None
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return self.version_before != self.version_after or self.vacuumed_files > 0


@dataclass
class MaintenanceReport:
    dry_run: bool
    tables: list[TableMaintenance]

    def rows(self) -> list[tuple[str, ...]]:
        """One printable row per table: files and bytes before -> after, work done, seconds."""

        def count(before: FileCount | None, after: FileCount | None, attr: str) -> str:
            if before is None:
                return "-"
            first = _human(getattr(before, attr), attr)
            if after is None:
                return first
            return f"{first} -> {_human(getattr(after, attr), attr)}"

        out = []
        for t in self.tables:
            if not t.exists:
                out.append((t.table, "absent", "", "", "", "", "", ""))
                continue
            out.append(
                (
                    t.table,
                    count(t.active_before, t.active_after, "files"),
                    count(t.active_before, t.active_after, "bytes"),
                    count(t.stored_before, t.stored_after, "files"),
                    _listed(t.zordered_partitions),
                    f"{t.compacted_files_removed} small"
                    if self.dry_run
                    else f"{t.compacted_files_removed} -> {t.compacted_files_added}",
                    str(t.vacuumed_files),
                    f"{t.seconds:.1f}",
                )
            )
        return out

    HEADERS = (
        "table", "files", "bytes", "stored files", "z-ordered", "compacted", "vacuumed", "s",
    )  # fmt: skip


def maintain(
    settings: Settings,
    tables: Iterable[str | Table] | None = None,
    progress: Progress | None = None,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> MaintenanceReport:
    """Compact, Z-order, vacuum and checkpoint every registered table (or the ones given).

    Args:
        settings: ``lake.root``, ``lake.storage_options``, ``lake.target_file_mb`` and
            ``lake.vacuum_retention_hours`` are read.
        tables: qualified names (``bronze.play_events``) or registry tables; all by default.
        progress: told each (table, step) as it starts.
        dry_run: count files and say what would be Z-ordered and vacuumed; change nothing.
        now: the clock deciding which days have closed (UTC now by default).

    Raises:
        NotFoundError: a named table is not in the registry.
    """
    chosen = [get_table(t) if isinstance(t, str) else t for t in (tables or TABLES.values())]
    now = now or datetime.now(UTC)
    results = [
        _maintain_table(table, settings, progress or _silent, dry_run, now) for table in chosen
    ]
    return MaintenanceReport(dry_run=dry_run, tables=results)


def _silent(table: str, step: str) -> None:
    pass


def _maintain_table(
    table: Table, settings: Settings, progress: Progress, dry_run: bool, now: datetime
) -> TableMaintenance:
    from deltalake import CommitProperties, DeltaTable

    started = time.perf_counter()
    name = table.qualified_name
    uri = table.path(settings)
    options = settings.lake.storage_options or None
    result = TableMaintenance(name)
    progress(name, "reading")
    if not DeltaTable.is_deltatable(uri, storage_options=options):
        result.exists = False
        return result
    delta = DeltaTable(uri, storage_options=options)
    storage = _storage(uri, options)
    result.version_before = delta.version()
    result.active_before = _active_files(delta)
    result.stored_before = _stored_files(storage)
    target_bytes = settings.lake.target_file_mb * 1024 * 1024
    retention = settings.lake.vacuum_retention_hours

    days = _days_to_zorder(table, delta, now)
    if dry_run:
        result.zordered_partitions = [f"{table.partition_by[0]}={d}" for d in days]
        result.compacted_files_removed = _small_files_to_pack(table, delta, target_bytes)
        result.vacuumed_files = len(_existing(storage, _vacuum_candidates(delta, retention)))
        result.seconds = time.perf_counter() - started
        return result

    for day in days:
        progress(name, f"z-ordering {day}")
        column = table.partition_by[0]
        zorder_by = list(table.extra["zorder_by"])
        delta.optimize.z_order(
            zorder_by,
            partition_filters=[(column, "=", day.isoformat())],
            target_size=target_bytes,
            # delta-rs does not log the columns; the commit says what the layout is
            commit_properties=CommitProperties(
                custom_metadata={"encore.zOrderBy": ",".join(zorder_by)}
            ),
        )
        result.zordered_partitions.append(f"{column}={day}")

    progress(name, "compacting")
    metrics = delta.optimize.compact(target_size=target_bytes)
    result.compacted_files_removed = metrics["numFilesRemoved"]
    result.compacted_files_added = metrics["numFilesAdded"]

    progress(name, "vacuuming")
    delta.update_incremental()
    # tombstones outlive their files (until the log forgets them), so delta-rs would list
    # and "delete" the same files on every run; vacuum only when something is really there
    expired = _existing(storage, _vacuum_candidates(delta, retention))
    if expired:
        delta.vacuum(
            retention_hours=retention,
            enforce_retention_duration=False,  # the setting is the floor, not Delta's 7 days
            dry_run=False,
            full=True,
        )
        result.vacuumed_files = len(expired)

    progress(name, "checkpointing")
    delta.update_incremental()
    if _last_checkpoint(storage) != delta.version():
        delta.create_checkpoint()
    delta.cleanup_metadata()
    result.checkpoint_version = _last_checkpoint(storage)
    result.version_after = delta.version()
    result.active_after = _active_files(delta)
    result.stored_after = _stored_files(storage)
    result.seconds = time.perf_counter() - started
    return result


def _days_to_zorder(table: Table, delta: DeltaTable, now: datetime) -> list[date]:
    """Closed days that still hold a file written while the day was open."""
    columns = tuple(table.extra.get("zorder_by", ()))
    if not columns or not table.partition_by:
        return []
    column = table.partition_by[0]
    if next(c.dtype for c in table.columns if c.name == column) != "date":
        return []
    actions = delta.get_add_actions(flatten=True)
    if actions.num_rows == 0:
        return []
    days = actions.column(f"partition.{column}").to_pylist()
    written_ms = actions.column("modification_time").to_pylist()
    today = now.astimezone(UTC).date()
    due = set()
    for day, written in zip(days, written_ms, strict=True):
        if day is None or day >= today:
            continue
        day_end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        if datetime.fromtimestamp(written / 1000, UTC) < day_end:
            due.add(day)
    return sorted(due)


def _small_files_to_pack(table: Table, delta: DeltaTable, target_bytes: int) -> int:
    """Files compaction would rewrite: those below the target, where a partition has two."""
    actions = delta.get_add_actions(flatten=True)
    keys = [actions.column(f"partition.{c}").to_pylist() for c in table.partition_by]
    sizes = actions.column("size_bytes").to_pylist()
    small = Counter(
        tuple(k[i] for k in keys) for i, size in enumerate(sizes) if size < target_bytes
    )
    return sum(n for n in small.values() if n > 1)


def _active_files(delta: DeltaTable) -> FileCount:
    actions = delta.get_add_actions(flatten=True)
    sizes = actions.column("size_bytes").to_pylist()
    return FileCount(files=len(sizes), bytes=sum(sizes))


def _storage(uri: str, options: dict[str, str] | None) -> pafs.FileSystem:
    """The table's folder through delta-rs's object store (local, S3, ...: same options)."""
    import pyarrow.fs as pafs
    from deltalake.fs import DeltaStorageHandler

    return pafs.PyFileSystem(DeltaStorageHandler(uri, options))


def _stored_files(storage: pafs.FileSystem) -> FileCount:
    import pyarrow.fs as pafs

    infos = storage.get_file_info(pafs.FileSelector("", recursive=True))
    data = [
        i
        for i in infos
        if i.type == pafs.FileType.File
        and not i.path.startswith(("_", "."))
        and i.path.endswith(".parquet")
    ]
    return FileCount(files=len(data), bytes=sum(i.size or 0 for i in data))


def _vacuum_candidates(delta: DeltaTable, retention_hours: int) -> list[str]:
    return delta.vacuum(
        retention_hours=retention_hours,
        enforce_retention_duration=False,
        dry_run=True,
        full=True,
    )


def _existing(storage: pafs.FileSystem, paths: list[str]) -> list[str]:
    import pyarrow.fs as pafs

    if not paths:
        return []
    return [i.path for i in storage.get_file_info(paths) if i.type == pafs.FileType.File]


def _last_checkpoint(storage: pafs.FileSystem) -> int | None:
    import pyarrow.fs as pafs

    pointer = "_delta_log/_last_checkpoint"
    if storage.get_file_info(pointer).type != pafs.FileType.File:
        return None
    with storage.open_input_stream(pointer) as stream:
        return json.loads(stream.read())["version"]


def _listed(partitions: list[str], most: int = 3) -> str:
    if len(partitions) > most:
        return f"{len(partitions)} partitions"
    return ", ".join(partitions) or "-"


def _human(value: int, attr: str) -> str:
    if attr == "files":
        return f"{value:,}"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)
