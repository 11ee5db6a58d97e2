"""How every daily lake job reads registry tables and replaces one day of its table.

A job computes a DataFrame for ``day`` and hands it to :func:`replace_day`, which casts it
to the registry's schema, runs the table's quality checks on exactly those rows (a failure
raises before anything is written), creates the table on first use, and overwrites the
day's partition only (``replaceWhere``), so running a day twice leaves the table's content
as it was. Tables without a day partition are replaced whole.

The ops tables (the build audit, quality results, the erasure log) are append-only logs of a
few rows each: :func:`append_rows` writes them with delta-rs, no Spark job.
"""

from __future__ import annotations

import time
from datetime import date
from typing import TYPE_CHECKING, Any

from encore.delta import read_lake_table
from encore.settings import Settings
from encore.tables import Table
from pipelines.lake.audit import RunRecord

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession


def ensure_table(spark: SparkSession, settings: Settings, table: Table) -> None:
    """Create ``table`` (empty, registry schema and partitioning) unless it exists."""
    from delta.tables import DeltaTable

    builder = (
        DeltaTable.createIfNotExists(spark)
        .location(table.path(settings))
        .addColumns(table.spark_schema())
    )
    if table.partition_by:
        builder = builder.partitionedBy(*table.partition_by)
    builder.execute()


def read_table(spark: SparkSession, settings: Settings, table: Table) -> DataFrame:
    """The table's current rows; an empty frame with its schema when it does not exist yet."""
    from delta.tables import DeltaTable

    path = table.path(settings)
    if not DeltaTable.isDeltaTable(spark, path):
        return spark.createDataFrame([], table.spark_schema())
    return spark.read.format("delta").load(path)


def conform(table: Table, frame: DataFrame) -> DataFrame:
    """``frame`` with exactly the registry's columns, in order, cast to their types."""
    from pyspark.sql import functions as F

    return frame.select(
        [F.col(f.name).cast(f.dataType).alias(f.name) for f in table.spark_schema().fields]
    )


def replace_day(
    spark: SparkSession,
    settings: Settings,
    table: Table,
    frame: DataFrame,
    day: date,
    rows_in: int,
    started: float,
) -> RunRecord:
    """Check and write ``frame`` as the whole of ``table``'s ``day``; the run's record.

    ``started`` is the job's ``time.monotonic()`` at its start for this table.

    Raises:
        QualityError: a check of ``table.checks`` failed; nothing was written.
    """
    from delta.tables import DeltaTable

    from pipelines.lake import quality

    rows = conform(table, frame).localCheckpoint(eager=True)
    quality.enforce(spark, settings, table, rows, day)
    ensure_table(spark, settings, table)
    # mergeSchema: a column the registry added joins a table an older build created (its
    # older days read null there until they are rebuilt); a changed type still fails
    writer = rows.write.format("delta").mode("overwrite").option("mergeSchema", "true")
    if table.day_column:
        writer = writer.option("replaceWhere", f"{table.day_column} = DATE'{day.isoformat()}'")
    writer.save(table.path(settings))
    target = DeltaTable.forPath(spark, table.path(settings))
    version = target.history(1).select("version").first()[0]
    return RunRecord(
        table=table.qualified_name,
        day=day,
        delta_version=version,
        rows_in=rows_in,
        rows_out=rows.count(),
        seconds=round(time.monotonic() - started, 3),
    )


def append_rows(settings: Settings, table: Table, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` (dicts keyed by column name) to ``table`` with delta-rs, in the
    registry's schema and partitioning, creating the table on first use; nothing for none."""
    import pyarrow as pa
    from deltalake import write_deltalake

    if not rows:
        return
    write_deltalake(
        table.path(settings),
        pa.Table.from_pylist(rows, schema=table.arrow_schema()),
        mode="append",
        partition_by=list(table.partition_by) or None,
        storage_options=settings.lake.storage_options or None,
    )


def read_log(settings: Settings, table: Table, order_by: str) -> pa.Table:
    """All of an ops table, ordered by ``order_by`` (oldest first); empty, with the table's
    schema, before anything was appended."""
    return read_lake_table(settings, table).sort_by([(order_by, "ascending")])
