"""Engine factories: a Spark session with Delta, and a Flink table environment with Kafka.

Both default to one machine (``local[*]``, the Flink mini-cluster) and reach a cluster by
settings alone (``ENCORE_SPARK__MASTER``, ``ENCORE_FLINK__JOBMANAGER``). JVM jars come from
``settings.jars_dir``, filled by Maven at setup time; nothing is downloaded at run time.

Spark's driver logs to ``$ENCORE_HOME/logs/spark.log`` (its start-up banner included), so
a command's terminal shows Encore's own output.

``pyspark`` and ``pyflink`` live in different environments (see infra/envs/flink), so each
factory imports its engine only when called.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from encore.errors import ConfigurationError
from encore.settings import Settings

if TYPE_CHECKING:
    from pyflink.table import TableEnvironment
    from pyspark.sql import SparkSession


def engine_jars(settings: Settings, engine: str) -> list[Path]:
    """The jars Maven copied for ``engine`` (``spark``, ``flink`` or ``kafka``)."""
    folder = settings.jars_dir / engine
    jars = sorted(folder.glob("*.jar"))
    if not jars:
        raise ConfigurationError(f"no {engine} jars in {folder}; run `make jars` (or `make setup`)")
    return jars


_SPARK_LOG4J2 = """\
# Spark's driver logs to logs/spark.log, not to the terminal (written by encore.engines)
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n
logger.parquet.name = org.apache.parquet
logger.parquet.level = error
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
"""


def spark_log_file(settings: Settings) -> Path:
    return settings.home / "logs" / "spark.log"


def _spark_log4j(settings: Settings) -> Path:
    path = settings.home / "spark" / "log4j2.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    spark_log_file(settings).parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_SPARK_LOG4J2.format(level="warn", log_file=spark_log_file(settings)))
    return path


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Point this process's stdout and stderr file descriptors at ``path`` for the block.

    A child started inside (the Spark driver JVM) keeps them: its start-up lines (JDK
    warnings, the log4j profile banner) land in the file instead of the terminal.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as target:
        os.dup2(target.fileno(), 1)
        os.dup2(target.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def create_spark_session(
    settings: Settings, app_name: str = "encore", extra_conf: dict[str, str] | None = None
) -> SparkSession:
    """A SparkSession with Delta Lake, on ``settings.spark.master``."""
    from pyspark.sql import SparkSession

    jars = ",".join(str(jar) for jar in engine_jars(settings, "spark"))
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark.master)
        .config("spark.jars", jars)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.driver.memory", settings.spark.driver_memory)
        .config("spark.sql.shuffle.partitions", str(settings.spark.shuffle_partitions))
        .config("spark.ui.enabled", str(settings.spark.ui_enabled).lower())
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        # Delta rebuilds table state with 50 tasks by default: minutes of overhead on 2 cores
        .config("spark.databricks.delta.snapshotPartitions", str(settings.spark.shuffle_partitions))
        # warehouse and derby metastore stay inside ENCORE_HOME, not the working directory
        .config("spark.sql.warehouse.dir", str(settings.home / "spark-warehouse"))
        .config(
            "spark.driver.extraJavaOptions",
            f"-Dderby.system.home={settings.home / 'derby'} "
            f"-Dlog4j2.configurationFile={_spark_log4j(settings)}",
        )
    )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    with _output_to(spark_log_file(settings)):
        return builder.getOrCreate()


def create_table_env(
    settings: Settings, streaming: bool = True, extra_conf: dict[str, str] | None = None
) -> TableEnvironment:
    """A Flink TableEnvironment with the Kafka connector, on the mini-cluster or a JobManager.

    Must run in the Flink environment (``settings.flink_python``).
    """
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env_settings = (
        EnvironmentSettings.in_streaming_mode()
        if streaming
        else EnvironmentSettings.in_batch_mode()
    )
    table_env = TableEnvironment.create(env_settings)
    config = table_env.get_config()
    for key, value in flink_configuration(settings).items():
        config.set(key, value)
    for key, value in (extra_conf or {}).items():
        config.set(key, value)
    return table_env


def flink_configuration(settings: Settings) -> dict[str, str]:
    """Flink options shared by the table and DataStream environments."""
    conf = {
        "pipeline.jars": ";".join(jar.as_uri() for jar in engine_jars(settings, "flink")),
        "parallelism.default": str(settings.flink.parallelism),
        "execution.checkpointing.interval": f"{settings.flink.checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "table.local-time-zone": "UTC",
    }
    if settings.flink.jobmanager:
        host, _, port = settings.flink.jobmanager.rpartition(":")
        conf |= {"execution.target": "remote", "rest.address": host, "rest.port": port}
    return conf
