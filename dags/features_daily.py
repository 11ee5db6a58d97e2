"""# features_daily

The day's feature tables built from the lake, and their values loaded into the online store
(Feast, Redis), after `lake_daily` published the day's gold tables.

**Graph**: `lake_day` -> `feature_tables` -> `apply` -> `materialize`.

- `lake_day` = `encore features lake-day`: prints the newest day the lake's gold tables
  were built for (from the build audit, `ops.job_runs`); the other tasks work on that day.
- `feature_tables` = `encore lake build --stage features --from DAY --to DAY`: the day's
  snapshots of `features.listener_activity`, `features.song_activity` and
  `features.artist_popularity` (each day replaced whole).
- `apply` = `encore features apply`: the feature definitions registered (a no-op when
  they did not change).
- `materialize` = `encore features materialize --through DAY`: the values known by the end
  of the day loaded into Redis. It updates the `encore://features/online` asset, which
  schedules `train_recommenders`.

**Schedule**: on the `encore://lake/gold` asset, i.e. after each `lake_daily` run that
passed its quality checks and published. An asset-triggered run has no data interval of
its own, so the day is read from the lake rather than from the run: "the newest day gold
was built for" is the day `lake_daily` just published (a backfill runs `lake_daily` in
order, so each run's day is the one just built). Runs one at a time.

**Idempotence**: every task rewrites the same day's snapshots and loads the same values:
running it again for the same lake changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task
from encore_common import DEFAULT_ARGS, FEATURES, GOLD, encore


@dag(
    dag_id="features_daily",
    schedule=[GOLD],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["encore", "features"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=2),
)
def features_daily() -> None:
    @task.bash(execution_timeout=timedelta(minutes=5))
    def lake_day() -> str:
        """The newest day gold was built for (the task's last output line, its XCom)."""
        return encore("features", "lake-day")

    @task.bash
    def feature_tables(day: str) -> str:
        """The day's feature snapshots in the lake."""
        return encore("lake", "build", "--stage", "features", "--from", day, "--to", day)

    @task.bash(execution_timeout=timedelta(minutes=10))
    def apply() -> str:
        """The feature definitions registered."""
        return encore("features", "apply")

    @task.bash(outlets=[FEATURES])
    def materialize(day: str) -> str:
        """The values known by the end of the day, into the online store."""
        return encore("features", "materialize", "--through", day)

    day = lake_day()
    feature_tables(day) >> apply() >> materialize(day)


features_daily()
