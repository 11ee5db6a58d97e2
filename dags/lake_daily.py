"""# lake_daily

The day that just ended, through the lake: the dimensions copied from PostgreSQL, silver and
gold built from the day's bronze events, every table of the day checked as written, and the
top songs published to PostgreSQL for the listener API.

**Graph**: `dims` -> `silver` -> `gold` -> `quality` -> `publish`.

- `dims` = `encore lake build --stage dims --from DAY --to DAY`: the catalog and accounts
  copied into `dims.*` (a MERGE of what changed: nothing changed, nothing written).
- `silver` = `encore lake build --stage silver ...`: `silver.plays` (de-duplicated, enriched)
  and `silver.sessions` of the day; also every earlier day, within
  `lake.late_lookback_days`, whose bronze received late events since it was built.
- `gold` = `encore lake build --stage gold ...`: the eight gold tables of the day, and of
  every earlier day whose silver was rebuilt (found in the build audit).
- `quality` = `encore lake check --day DAY`: the checks of every silver and gold table on
  the day's rows as written; a failing check fails the task (its log names the table, the
  day, the check and an example row) and nothing is published.
- `publish` = `encore lake build --stage publish ...`: the newest day of
  `gold.artist_top_songs` replaces PostgreSQL's `artist_top_songs` in one transaction. It
  updates the `encore://lake/gold` asset (on `publish`, not on `quality`: a consumer such
  as `features_daily` starts only once the checked day is also the one the API serves).

Every job also checks the rows it is about to write and refuses to write a failing day, so
a bad row in bronze already fails `silver`; `quality` checks again what is in the lake.

**Schedule**: daily at 00:00 UTC for the day that just ended (`DAY` is the data interval's
first day); one run at a time, so a backfill builds its days in order (each day's rolling
windows see the days before it).

**Idempotence**: each task replaces its day's partitions (and the dims MERGE or the
publish transaction writes the same rows), so a second run of an interval leaves every
table's rows as they were. The stages run one after the other build exactly what one
`encore lake build --from DAY --to DAY` builds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task
from encore_common import DAILY, DAY, DEFAULT_ARGS, GOLD, encore


def build(stage: str) -> str:
    """``encore lake build`` of one stage for the run's day."""
    return encore("lake", "build", "--stage", stage, "--from", DAY, "--to", DAY)


@dag(
    dag_id="lake_daily",
    schedule=DAILY,
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["encore", "lake"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=4),
)
def lake_daily() -> None:
    @task.bash(execution_timeout=timedelta(minutes=20))
    def dims() -> str:
        """The catalog and accounts, copied from PostgreSQL."""
        return build("dims")

    @task.bash
    def silver() -> str:
        """silver.plays and silver.sessions of the day (and of late days)."""
        return build("silver")

    @task.bash
    def gold() -> str:
        """The gold tables of the day (and of days whose silver was rebuilt)."""
        return build("gold")

    @task.bash(execution_timeout=timedelta(minutes=30))
    def quality() -> str:
        """Every silver and gold table's checks on the day's rows as written."""
        return encore("lake", "check", "--day", DAY)

    @task.bash(execution_timeout=timedelta(minutes=10), outlets=[GOLD])
    def publish() -> str:
        """The top songs, to PostgreSQL."""
        return build("publish")

    dims() >> silver() >> gold() >> quality() >> publish()


lake_daily()
