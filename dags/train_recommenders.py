"""# train_recommenders

The recommenders retrained on the lake's newest day, promoted only when they beat the
models serving now, and the serving side refreshed.

**Graph**:

```
lake_day -> training_dataset -> train_candidates -> promote -> publish_index -> precompute
                              \\-> train_ranker
```

- `lake_day` = `encore features lake-day`: the newest day gold was built for (DAY below).
- `training_dataset` = `encore lake build --stage training --from DAY --to DAY`: the
  `training.interactions` snapshot with cut-off DAY.
- `train_candidates` = `encore train als --dataset lake --cutoff DAY --serving
  --no-promote`: ALS fitted on a time split of that snapshot, evaluated, registered as a new
  version of the serving model (`serving.model_name`) with its FAISS index, and aliased
  `challenger`. The version is handed on through that alias, not through XCom.
- `promote` = `encore models promote`: the challenger becomes `champion` only if it beats
  the champion on the same data: the champion's recorded score when both were scored on the
  same test split, else the champion re-scored on the challenger's test split (rebuilt from
  its lineage); a champion of other listeners or songs is "not comparable" and stays. The
  decision and its reason are tags of the version (`promotion.decision`, `promotion`) and
  lines of the task's log. A task that does not promote still succeeds.
- `publish_index` = `encore models publish-index`: the champion's FAISS index where the
  service loads it (the `faiss` artifacts of its run). Training registers each version with
  its index, so the alias never names a version without one; this task verifies it and
  builds the index for a champion registered without (an operator's `--no-index` version).
- `precompute` = `encore recs precompute`: the active listeners' top lists in Redis
  (`recs:v1:<model>:<user>`) from the champion. Updates `encore://models/champion`.
- `train_ranker` = `encore train-ranker --split DAY --fit-young-lake`: the LambdaRank
  ranker on Feast's point-in-time features, test requests on DAY, training requests the
  week before (on a lake younger than that week, the requests are spread over the plays it
  holds, and the log says so); it registers and decides its own promotion with the same
  rule in the same command (its champion is re-scored by reranking the test requests,
  which live only in that process). Apart from the candidate branch: a ranker that cannot
  be trained fails this task and the run, not the candidate model's publication.

**Schedule**: on the `encore://features/online` asset, i.e. after `features_daily` loaded the
day's features (the ranker trains on them; the candidate model on the same day's lake).
Daily, then, one day behind the clock; `max_active_tasks=1` because each training uses both
cores of the embedded machine.

**Idempotence**: a second run for the same lake registers nothing: `encore train` and
`encore train-ranker` find the version trained on identical data (the training key: data
content, cut-off, parameters, seed, code commit), say so and make it the challenger again;
`promote` then finds it is the champion already or reaches the same decision; the index and
the lists are rewritten the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task
from encore_common import DEFAULT_ARGS, FEATURES, MODELS, encore


@dag(
    dag_id="train_recommenders",
    schedule=[FEATURES],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,
    tags=["encore", "models", "serving"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=4),
)
def train_recommenders() -> None:
    @task.bash(execution_timeout=timedelta(minutes=5))
    def lake_day() -> str:
        """The newest day gold was built for (the task's last output line, its XCom)."""
        return encore("features", "lake-day")

    @task.bash
    def training_dataset(day: str) -> str:
        """The training.interactions snapshot with cut-off DAY."""
        return encore("lake", "build", "--stage", "training", "--from", day, "--to", day)

    @task.bash(do_xcom_push=False)
    def train_candidates(day: str) -> str:
        """ALS on the snapshot, registered as the serving model's challenger."""
        return encore(
            "train", "als", "--dataset", "lake", "--cutoff", day, "--serving", "--no-promote"
        )

    @task.bash(do_xcom_push=False, execution_timeout=timedelta(minutes=30))
    def promote() -> str:
        """Challenger to champion only if better on the same data; the decision recorded."""
        return encore("models", "promote")

    @task.bash(execution_timeout=timedelta(minutes=30))
    def publish_index() -> str:
        """The champion's FAISS index where the service loads it."""
        return encore("models", "publish-index")

    @task.bash(outlets=[MODELS], execution_timeout=timedelta(minutes=30))
    def precompute() -> str:
        """The active listeners' lists from the champion, in Redis."""
        return encore("recs", "precompute")

    @task.bash(do_xcom_push=False, execution_timeout=timedelta(hours=2))
    def train_ranker(day: str) -> str:
        """The ranker on point-in-time features; registered, promoted by the same rule."""
        return encore("train-ranker", "--split", day, "--fit-young-lake")

    day = lake_day()
    dataset = training_dataset(day)
    dataset >> train_candidates(day) >> promote() >> publish_index() >> precompute()
    dataset >> train_ranker(day)


train_recommenders()
