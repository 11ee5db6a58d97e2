"""The dimensions: the catalog and the accounts, copied from PostgreSQL into Delta.

Input: PostgreSQL (``settings.postgres``), read through Spark's JDBC reader (the driver jar
comes from Maven with the other Spark jars). Output: every table of the registry's ``dims``
layer (``dims.artists``, ``dims.albums``, ``dims.songs``, ``dims.users``); each names its
source table in ``extra["source_table"]`` and the job selects exactly the registry's
columns from it, so ``dims.users`` never sees a password hash, an e-mail or a username (the
query does not name them). Schedule: first in ``encore lake build``, once per build.

Each table is MERGEd by its registry key into the current state of its source: new rows are
inserted, changed rows overwritten, rows gone from the source deleted. Only the changes are
merged, so a second run with nothing new commits nothing (same version, same files). A copy
made before the registry changed the table's columns (``dims.songs`` gained ``territories``)
is replaced by an empty table of the registry's schema and filled again by the same MERGE.

No attribute keeps history (type 1), on purpose:

* the source keeps none: PostgreSQL holds the current row only, so a daily copy could date
  a change only to the day it was seen, not when it happened;
* the catalog's changes are corrections (a title, a genre, a duration measured from the
  ingested audio), which past plays should see too;
* a listener's country and plan are personal data: a history of them multiplies what an
  erasure must find. Analyses of plan changes belong with billing's own events.

Delta's time travel keeps every earlier state for ``lake.vacuum_retention_hours``.
"""

from __future__ import annotations

import time
from datetime import date
from typing import TYPE_CHECKING

from encore.errors import ConfigurationError
from encore.settings import Settings
from encore.tables import Table, tables_in
from pipelines.lake.audit import RunRecord

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JDBC_DRIVER = "org.postgresql.Driver"
FETCH_ROWS = 10_000
"""Rows per JDBC round trip: with a fetch size the driver streams the result instead of
holding all of it in memory (a million songs)."""


def jdbc_source(settings: Settings) -> tuple[str, dict[str, str]]:
    """The JDBC URL of ``settings.postgres`` and its connection properties.

    The password travels in the properties only, never in the URL (which Spark may log);
    Spark redacts ``password`` in the plans and options it prints.
    """
    from psycopg.conninfo import conninfo_to_dict

    dsn = settings.postgres.effective_dsn
    scheme, sep, rest = dsn.partition("://")
    parts = conninfo_to_dict(f"postgresql://{rest}" if sep else dsn)
    host, port, database = parts.get("host"), parts.get("port") or "5432", parts.get("dbname")
    if not host or not database or "," in str(host):
        raise ConfigurationError(
            f"postgres.dsn: expected one host and a database name, got scheme {scheme!r} "
            f"host {host!r} database {database!r}"
        )
    properties = {"driver": JDBC_DRIVER, "fetchsize": str(FETCH_ROWS)}
    for name in ("user", "password", "sslmode"):
        if parts.get(name):
            properties[name] = str(parts[name])
    return f"jdbc:postgresql://{host}:{port}/{database}", properties


def read_source(spark: SparkSession, settings: Settings, table: Table) -> DataFrame:
    """The source rows of ``table``, cast to its registry schema."""
    from pyspark.sql import functions as F

    source = table.extra.get("source_table")
    if not source:
        raise ConfigurationError(
            f"{table.qualified_name} has no extra['source_table']: the dims job cannot "
            "tell which PostgreSQL table it copies"
        )
    url, properties = jdbc_source(settings)
    query = f"(SELECT {', '.join(table.column_names)} FROM {source}) AS {source}"
    frame = spark.read.jdbc(url, query, properties=properties)
    return frame.select(
        [F.col(f.name).cast(f.dataType).alias(f.name) for f in table.spark_schema().fields]
    )


def snapshot_changes(table: Table, source: DataFrame, target: DataFrame) -> DataFrame:
    """What turns ``target`` into ``source``: the new or changed source rows, and the target
    rows whose key left the source, marked ``_deleted``."""
    from pyspark.sql import functions as F

    same_row = [F.col(f"s.{c}").eqNullSafe(F.col(f"t.{c}")) for c in table.column_names]
    upserts = source.alias("s").join(target.alias("t"), same_row, "left_anti")
    gone = target.join(source.select(*table.key), list(table.key), "left_anti")
    return upserts.withColumn("_deleted", F.lit(False)).unionByName(
        gone.withColumn("_deleted", F.lit(True))
    )


def merge_snapshot(
    spark: SparkSession, settings: Settings, table: Table, source: DataFrame
) -> None:
    """Make ``table`` equal to ``source`` by key, rewriting only the files of changed rows.

    The changes are computed first and MERGEd alone: a MERGE of the whole source with a
    ``NOT MATCHED BY SOURCE`` clause would rewrite every file even when nothing changed.
    """
    from delta.tables import DeltaTable

    if not table.key:
        raise ConfigurationError(f"{table.qualified_name} has no key to MERGE by")
    path = table.path(settings)
    if registry_changed(spark, table, path):
        # a copy made before the registry gained (or retyped) a column: start it again, the
        # MERGE below then fills it from the source (time travel keeps the old copy)
        DeltaTable.replace(spark).location(path).addColumns(table.spark_schema()).execute()
    DeltaTable.createIfNotExists(spark).location(path).addColumns(table.spark_schema()).execute()
    target = DeltaTable.forPath(spark, path)
    changes = snapshot_changes(table, source, target.toDF()).localCheckpoint(eager=True)
    if changes.isEmpty():
        return  # no commit: the version and the files stay as they are
    values = {c: f"s.{c}" for c in table.column_names}
    (
        target.alias("t")
        .merge(changes.alias("s"), " AND ".join(f"t.{k} = s.{k}" for k in table.key))
        .whenMatchedDelete(condition="s._deleted")
        .whenMatchedUpdate(set=values)
        .whenNotMatchedInsert(condition="NOT s._deleted", values=values)
        .execute()
    )


def registry_changed(spark: SparkSession, table: Table, path: str) -> bool:
    """Whether the Delta table at ``path`` exists with other columns or types than the
    registry's ``table`` declares."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return False

    def columns(schema) -> list[tuple[str, str]]:
        return [(f.name, f.dataType.simpleString()) for f in schema.fields]

    existing = DeltaTable.forPath(spark, path).toDF().schema
    return columns(existing) != columns(table.spark_schema())


def snapshot_table(spark: SparkSession, settings: Settings, table: Table, day: date) -> RunRecord:
    """Copy one dimension; its audit record."""
    from delta.tables import DeltaTable

    started = time.monotonic()
    # read PostgreSQL once: the count and the MERGE see the same rows
    source = read_source(spark, settings, table).localCheckpoint(eager=True)
    rows_in = source.count()
    merge_snapshot(spark, settings, table, source)
    target = DeltaTable.forPath(spark, table.path(settings))
    version = target.history(1).select("version").first()[0]
    rows_out = target.toDF().count()
    return RunRecord(
        table=table.qualified_name,
        day=day,
        delta_version=version,
        rows_in=rows_in,
        rows_out=rows_out,
        seconds=round(time.monotonic() - started, 3),
    )


def run(spark: SparkSession, settings: Settings, day: date) -> list[RunRecord]:
    """Copy every ``dims`` table of the registry; ``day`` only labels the audit records."""
    return [snapshot_table(spark, settings, table, day) for table in tables_in("dims")]
