# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A point-in-time training set from Feast, and the ranker trained on it
#
# The recommendation service works in two stages: candidate sources propose songs (the
# champion model's nearest songs, trending songs in the listener's country, top songs of
# the artists they played lately), then a **ranker** (LightGBM LambdaRank) re-orders them
# from features served by Feast. Training that ranker needs, for every past request, the
# features *as they were known at that moment*: a feature computed from later plays would
# leak the answer. This notebook builds such a training set with Feast's point-in-time
# join over the lake and trains the ranker on it, with the functions `encore train-ranker`
# uses (`models.ranker_training`).
#
# Before: `encore lake build` (silver and the `features.*` daily snapshots).

# %% tags=["parameters"]
small = False  # True: the test suite's run (fewer requests, a smaller model)
candidate_model = "als"  # the first stage's model family, fitted before each split point
train_days = 7  # training request times over these days before the split
test_days = 1  # test request times over these days from the split
max_queries_per_step = 300  # listeners asked at one request time, at most
n_estimators = 200  # LightGBM boosting rounds
seed = 0

# %%
from datetime import timedelta

import matplotlib.pyplot as plt
import pandas as pd
import polars as pl

from encore.settings import get_settings
from encore.tables import LISTENER_ACTIVITY
from features import store
from features.definitions import RANKER_SERVICE
from models.ranker_training import (
    DERIVED_FEATURES,
    FEAST_SEPARATOR,
    REQUEST_FEATURES,
    CandidateConfig,
    RankerSplit,
    build_ranking_data,
    default_split,
    point_in_time_features,
    ranker_feature_columns,
    read_plays,
)
from models.ranking import evaluate, train_ranker
from pipelines.lake.exploration import lake_frame

if small:
    max_queries_per_step = min(max_queries_per_step, 40)
    train_days = min(train_days, 4)
    n_estimators = min(n_estimators, 50)
settings = get_settings()
print("feature repo:", settings.features_repo, "project:", settings.features.project)

# %% [markdown]
# ## The feature repository
#
# `features.store.apply` is `encore features apply`: it renders `feature_store.yaml` from the
# settings (offline store: DuckDB reading the lake's Delta tables; online store: Redis) and
# registers the definitions of `features/definitions.py`. Each feature view reads one daily
# snapshot table of the lake; a snapshot of day D carries `event_timestamp` = D + 1 day at
# 00:00 UTC, the moment its values became known.

# %%
applied = store.apply(settings)
feast = store.feature_store(settings)
views = pd.DataFrame(
    [
        {
            "view": view.name,
            "entities": ", ".join(view.entities),
            "ttl": view.ttl,
            "features": ", ".join(f.name for f in view.features),
        }
        for view in feast.list_feature_views()
    ]
)
service = feast.get_feature_service(RANKER_SERVICE)
print(f"applied {len(applied)} definitions; {RANKER_SERVICE} reads", [
    projection.name for projection in service.feature_view_projections
])
views

# %% [markdown]
# ## What "point in time" means, for one listener
#
# Ask Feast for one listener's features at noon on a few consecutive days. For each time T
# the join takes the listener's snapshot with the latest `event_timestamp` at or before T
# (and not older than the view's TTL): the snapshot of the day before T, never T's own day,
# which had not ended. The raw table below shows the snapshots it chose from.

# %%
plays, lineage = read_plays(settings)
listener = plays.group_by("user_id").len().sort("len", descending=True)["user_id"][0]
song = plays.filter(pl.col("user_id") == listener)["song_id"][0]
artist = plays.filter(pl.col("song_id") == song)["artist_id"][0]
last_noon = (plays["start_time"].max() - timedelta(days=1)).replace(
    hour=12, minute=0, second=0, microsecond=0
)
asked = pl.DataFrame(
    {
        "user_id": listener,
        "song_id": song,
        "artist_id": artist,
        "event_timestamp": [last_noon - timedelta(days=n) for n in range(3, -1, -1)],
    }
)
column = f"listener_activity{FEAST_SEPARATOR}plays_7d"
known = point_in_time_features(settings, asked)
snapshots = lake_frame(
    settings, LISTENER_ACTIVITY, ["feature_date", "event_timestamp", "user_id", "plays_7d"]
).filter(pl.col("user_id") == listener)
for row in known.iter_rows(named=True):
    chosen = snapshots.filter(pl.col("event_timestamp") <= row["event_timestamp"]).sort(
        "event_timestamp"
    )[-1]
    assert row[column] == chosen["plays_7d"][0], (row, chosen)
display(known.select("event_timestamp", column, f"song_activity{FEAST_SEPARATOR}plays_7d"))
snapshots.sort("feature_date").tail(6)

# %% [markdown]
# ## The training set
#
# Requests are replayed at times `t` (one a day here): training requests over the
# `train_days` before the split, test requests after it. At each `t`:
#
# 1. the listeners asked are those who played in the label window `[t, t + 1 day)`;
# 2. the candidate sources run on the plays before `t` only (the candidate model is fitted
#    on the plays before the first request of its side, so no label reaches it);
# 3. each candidate is labelled by what the listener did in the window: 2 completed,
#    1 partial play, 0 skipped or not played;
# 4. Feast joins the listener, song and artist features known at `t`.

# %%
lake_days = (plays["start_time"].max() - plays["start_time"].min()).days
if train_days + test_days + 1 > lake_days:  # a young lake: keep plays for the first model
    train_days = max(1, lake_days - test_days - 2)
    print(f"the lake holds {lake_days} days of plays: training requests over {train_days}")
split = RankerSplit(
    default_split(plays, timedelta(days=test_days)),
    train_span=timedelta(days=train_days),
    test_span=timedelta(days=test_days),
    max_queries_per_step=max_queries_per_step,
)
config = CandidateConfig.from_settings(
    settings,
    model=candidate_model,
    model_params={"factors": 16 if small else 32, "iterations": 10, "seed": seed},
)
data = build_ranking_data(settings, split, config, plays, seed, report=print)
sides = pd.DataFrame(
    {
        side: {
            "requests": frame["query_id"].n_unique(),
            "rows": frame.height,
            "listeners": frame["user_id"].n_unique(),
            **{f"label {n}": int((frame["label"] == n).sum()) for n in (0, 1, 2)},
            "first request": frame["event_timestamp"].min(),
            "last request": frame["event_timestamp"].max(),
        }
        for side, frame in (("train", data.train), ("test", data.test))
    }
)
sides

# %% [markdown]
# No feature comes from the future: every listener's last play known to the features is
# before the request it describes (the snapshots end at 00:00 of the request's day), and the
# test requests all come after the training requests' label windows.

# %%
last_played = f"listener_activity{FEAST_SEPARATOR}last_played_at"
for frame in (data.train, data.test):
    known_rows = frame.filter(pl.col(last_played).is_not_null())
    assert (known_rows[last_played] < known_rows["event_timestamp"]).all()
assert data.train["event_timestamp"].max() + split.label_window <= data.test[
    "event_timestamp"
].min()
columns = ranker_feature_columns(data.train)
groups = {
    "request (first stage)": [c for c in columns if c in REQUEST_FEATURES],
    "Feast": [c for c in columns if FEAST_SEPARATOR in c],
    "derived": [c for c in columns if c in DERIVED_FEATURES],
}
for name, names in groups.items():
    print(f"{name} ({len(names)}): {', '.join(names)}")
data.train.select("query_id", "song_id", "label", *columns[:6]).head(8)

# %% [markdown]
# ## The ranker
#
# LightGBM LambdaRank learns an order per request (`query_id`) that puts the higher labels
# first. It is evaluated on the test requests against the candidate model's own order: NDCG
# and coverage at 10, recall at 50 (whose denominator counts the songs the listener played
# in the window that no source proposed, so it also charges the candidate sources). With a
# few hundred requests (a small or young lake) the ranker has little to learn from and can
# lose to the candidate model's own order: that is what the comparison is for, and why
# `encore train-ranker` promotes a ranker only when it beats the champion.

# %%
ranker = train_ranker(data.train, columns, {"n_estimators": n_estimators}, seed=seed)
reranked = ranker.rerank(data.test)
results = pd.DataFrame(
    {
        "candidate model alone": evaluate(
            data.test, "candidate_score", catalog_size=data.catalog_size
        ),
        "ranker": evaluate(reranked, "ranker_score", catalog_size=data.catalog_size),
    }
).T
results.round(4)

# %%
importance = (
    pd.Series(
        ranker.booster.feature_importance(importance_type="gain"), index=ranker.feature_columns
    )
    .sort_values()
    .tail(15)
)
fig, ax = plt.subplots(figsize=(8, 5))
ax.barh(importance.index, importance.values)
ax.set(title="What the ranker uses (total gain)", xlabel="gain")
fig.tight_layout()

# %% [markdown]
# ## From here
#
# - `encore train-ranker` does all of this on the default spans, logs the run and registers
#   the ranker in MLflow (alias `challenger`, `champion` when it beats the current one on
#   the same test requests); the service then reads the same features online after
#   `encore features materialize`.
# - A new feature is a column of a `features.*` table (`encore/tables.py`); the view picks
#   it up; a ranker trained on it gets a new feature service (`ranker_v2`), so the running
#   champion's inputs never change under it.
