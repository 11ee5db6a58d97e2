"""# lake_maintenance

The lake's weekly upkeep: `encore lake maintain` over every registry table.

**Graph**: one task, `maintain` = `encore lake maintain`: per table, small files compacted
(closed days of `bronze.play_events` also Z-ordered by song and listener), files no
version needs any more vacuumed (older than `lake.vacuum_retention_hours`), and the Delta
log checkpointed. One task rather than one per layer: the table list lives in the
registry (`encore.tables`), which the DAG file does not import (nothing heavy at parse
time); the command's table printed at the end says what it did per table.

**Schedule**: weekly, Sundays at 03:00 UTC, after the night's `lake_daily` run; one run at a
time.

**Idempotence**: compaction of compacted files and a vacuum with nothing expired change
nothing; a second run leaves every table's rows as they were (maintenance never changes
rows, only files).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task
from encore_common import DEFAULT_ARGS, WEEKLY, encore


@dag(
    dag_id="lake_maintenance",
    schedule=WEEKLY,
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["encore", "lake", "maintenance"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
)
def lake_maintenance() -> None:
    @task.bash(execution_timeout=timedelta(hours=2))
    def maintain() -> str:
        """Compaction, vacuum and checkpoint of every lake table."""
        return encore("lake", "maintain")

    maintain()


lake_maintenance()
