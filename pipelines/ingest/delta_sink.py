"""Exactly-once appends to a Delta table, tied to Kafka offsets through Delta app transactions.

Why delta-rs and not Delta's own Flink sink: ``io.delta:delta-flink`` (the connector with a
two-phase-commit sink bound to Flink checkpoints) is not available from the Maven registry this
platform resolves jars from, and a Python function in PyFlink gets no checkpoint hooks, so a
Python sink cannot do Flink's two-phase commit either. Instead every Delta commit records, in
the same atomic log entry as the data, one *app transaction* per Kafka partition it covers::

    app_id  = "encore-ingest:<topic>:<partition>"
    version = the highest Kafka offset of that partition contained in this or an earlier commit

Before writing, rows whose offset is at or below the committed version of their partition are
dropped. A replay after a crash (Flink restores the source offsets and operator state of the
last checkpoint, which may be older than the last Delta commit) therefore re-delivers rows that
are silently skipped, and rows that were never committed are written: each Kafka record lands
at most once because of the filter and at least once because Flink replays from a checkpoint
taken before its commit. This relies on rows of one partition reaching the writer in offset
order, which the job guarantees by giving each Kafka partition to one lane (see job.py).

Input: batches as column lists (what the job's ``ARRAY_AGG`` micro-batches deliver).
Output: Delta commits; each writer owns whole partitions (its lane's), so writers of several
lanes append side by side: their app transactions never overlap.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Field, Transaction, write_deltalake

from encore.settings import Settings
from encore.tables import Table

log = logging.getLogger(__name__)

APP_ID_PREFIX = "encore-ingest"


def app_id(topic: str, partition: int) -> str:
    """The Delta app-transaction id of one Kafka topic-partition."""
    return f"{APP_ID_PREFIX}:{topic}:{partition}"


def open_table(table: Table, settings: Settings) -> DeltaTable:
    """The table, created empty with its registry schema and partitioning if missing, and
    given the nullable columns the registry gained since it was created (an optional event
    field, the contract's compatible change: older rows read them as null)."""
    delta = DeltaTable.create(
        table.path(settings),
        table.arrow_schema(),
        mode="ignore",
        partition_by=list(table.partition_by) or None,
        storage_options=settings.lake.storage_options or None,
    )
    present = set(delta.schema().to_arrow().names)
    gained = [field for field in table.arrow_schema() if field.name not in present]
    if gained:
        # only nullable columns, appended at the end: the registry lists them last, so the
        # table's column order stays the registry's and appends keep matching it
        delta.alter.add_columns([Field.from_arrow(field) for field in gained])
        log.info("%s: added column(s) %s", table.name, [f.name for f in gained])
    return delta


def committed_offsets(
    table: Table, settings: Settings, topic: str, partitions: Sequence[int]
) -> dict[int, int]:
    """The last committed offset per partition (partitions never committed are left out)."""
    delta = open_table(table, settings)
    offsets = {}
    for partition in partitions:
        version = delta.transaction_version(app_id(topic, partition))
        if version is not None:
            offsets[partition] = version
    return offsets


class OffsetTiedWriter:
    """Appends batches to one Delta table, each commit carrying its Kafka offsets."""

    def __init__(self, table: Table, settings: Settings, topic: str) -> None:
        self.table = table
        self.topic = topic
        self.schema = table.arrow_schema()
        self.delta = open_table(table, settings)
        self._committed: dict[int, int] = {}
        self.commits = 0
        self.last_versions: dict[int, int] = {}
        """Partition -> highest offset of the last commit (for the commit log)."""

    def committed(self, partition: int) -> int:
        """Last committed offset of ``partition``, -1 if none (read once, then tracked here:
        this object is the table's only writer, so the log cannot move under it)."""
        if partition not in self._committed:
            version = self.delta.transaction_version(app_id(self.topic, partition))
            self._committed[partition] = -1 if version is None else version
        return self._committed[partition]

    def write(self, columns: Mapping[str, Any], covered: Mapping[int, int] | None = None) -> int:
        """Append the rows not committed yet; returns how many were written.

        ``columns`` maps every column of the table to a list or Arrow array of equal length;
        ``kafka_partition`` and ``kafka_offset`` must be among them. ``covered``: per
        partition, the highest offset the caller has fully handled with this commit (records
        it rejected elsewhere or dropped as duplicates included); the commit records it, so a
        restart without a checkpoint resumes after it.
        """
        batch = pa.table(
            {field.name: _as_array(columns[field.name], field.type) for field in self.schema},
            schema=self.schema,
        )
        if batch.num_rows == 0:
            return 0
        partitions = batch.column("kafka_partition")
        offsets = batch.column("kafka_offset")
        keep = None
        versions: dict[int, int] = {}
        for partition in pc.unique(partitions).to_pylist():
            mask = pc.and_(
                pc.equal(partitions, partition), pc.greater(offsets, self.committed(partition))
            )
            keep = mask if keep is None else pc.or_(keep, mask)
            highest = pc.max(pc.filter(offsets, mask)).as_py()
            if highest is not None:
                versions[partition] = highest
        batch = batch.filter(keep)
        for partition, offset in (covered or {}).items():
            if partition in versions and offset > versions[partition]:
                versions[partition] = offset
        skipped = len(offsets) - batch.num_rows
        if skipped:
            log.info("%s: skipped %d rows already committed (replay)", self.table.name, skipped)
        if batch.num_rows == 0:
            self.last_versions = {}
            return 0
        write_deltalake(
            self.delta,
            batch,
            mode="append",
            partition_by=list(self.table.partition_by) or None,
            commit_properties=CommitProperties(
                app_transactions=[
                    Transaction(app_id(self.topic, partition), version)
                    for partition, version in sorted(versions.items())
                ]
            ),
        )
        self._committed.update(versions)
        self.last_versions = versions
        self.commits += 1
        return batch.num_rows


def _as_array(values: Any, arrow_type: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values.cast(arrow_type) if values.type != arrow_type else values
    if pa.types.is_timestamp(arrow_type) and values and isinstance(values[0], int):
        # the job carries times as epoch microseconds (cheap to move through Flink)
        return pa.array(values, pa.int64()).cast(arrow_type)
    return pa.array(values, arrow_type)


def utc_now() -> datetime:
    return datetime.now(UTC)
