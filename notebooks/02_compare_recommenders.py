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
# # Comparing recommenders: the protocol, then MLflow runs side by side
#
# How Encore scores a recommender offline, step by step on the lake's data, then a few
# models trained and logged to the platform's MLflow and read back as one table.
#
# The same functions run in `encore train` and `encore evaluate` (`models.training`,
# `models.protocol`, `models.splits`, `models.evaluation`), so the numbers here are
# comparable with those of the registered versions when the evaluation data is the same
# (their `evaluation_fingerprint` tag, the test split's sha256, says so).

# %% tags=["parameters"]
small = False  # True: the test suite's run (smaller models)
dataset = "lake"  # training.interactions' latest snapshot; "synthetic" needs no lake
k = 10  # the cut-off of every metric
seed = 0
experiment = "encore-comparisons"  # the MLflow experiment the runs go to

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from encore.settings import get_settings
from models import create_recommender
from models.comparison import compare_recommenders, runs_table
from models.datasets import fingerprint, load_dataset
from models.evaluation import ranking_metrics, recommend_all
from models.protocol import split_for
from models.registry import registry_client
from models.splits import time_split
from models.training import split_for_training

settings = get_settings()
candidates = {
    "pop": {},
    "itemknn": {"k": 50},
    "als": {"factors": 16 if small else 64, "iterations": 5 if small else 15, "num_threads": 1},
}

# %% [markdown]
# ## The data
#
# `training.interactions` holds one snapshot per cut-off day: a (listener, song) pair per row
# with a `weight` (completed plays count fully, partial plays half, skips a tenth, a like adds
# two). Models read the listeners x songs matrix of weights.

# %%
data = load_dataset(dataset, settings)
pd.DataFrame([{**data.describe(), **data.lineage}]).T.rename(columns={0: dataset})

# %% [markdown]
# ## The split
#
# For the lake the split is **by time** (`split_for` picks it): the plays before the
# 90% quantile of time train; the test set holds the pairs first played *after* the cut
# that the listener had never played before: discoveries, which is what a recommender is
# for (re-listening is not predicted). Other datasets (no real timestamps) use a per-user
# random holdout. `encore train` uses exactly this split (`split_for_training`, 10% test);
# the assertion below checks it is the one rebuilt here by hand.

# %%
print("split:", split_for(data))
train, test = split_for_training(data, seed)
if split_for(data) == "time":
    by_hand_train, by_hand_test, cut = time_split(data.events, data.shape, 0.1)
    assert fingerprint(by_hand_test) == fingerprint(test)
    print("time cut:", pd.Timestamp(cut, unit="s", tz="UTC"))
test_users = np.flatnonzero(np.diff(test.indptr) > 0)
pd.DataFrame(
    {
        "pairs": [train.nnz, test.nnz],
        "listeners": [int((np.diff(train.indptr) > 0).sum()), len(test_users)],
    },
    index=["train", "test"],
)

# %% [markdown]
# ## The metrics, worked out for one listener
#
# Every model ranks **every** song for each test listener; songs the listener played in
# training are filtered out; the top K are compared with the listener's test songs `T`
# (binary relevance). With hits at ranks $r$ (from 1):
#
# - precision@K $= |hits| / K$, recall@K $= |hits| / |T|$, hit rate@K $= 1$ if any hit;
# - NDCG@K $= \sum_{hits} 1/\log_2(r+1)$ divided by the same sum for $\min(|T|, K)$ hits at
#   the top (the best possible order);
# - MAP@K: the mean of precision@r over the hit ranks, divided by $\min(|T|, K)$;
# - coverage@K: distinct songs recommended to anyone / catalogue size; novelty@K: the mean
#   $-\log_2 p_i$ of the recommended songs, $p_i$ the share of listeners who played song $i$
#   (higher: less obvious recommendations).
#
# Metrics are averaged over test listeners. Here is the popularity baseline for one of them
# (the first whose top K holds a test song, so that there is something to count).

# %%
pop = create_recommender("pop").fit(train)
tops = recommend_all(pop, train, test_users, k)
found = [
    row
    for row, u in enumerate(test_users)
    if np.isin(tops[row], test.indices[test.indptr[u] : test.indptr[u + 1]]).any()
]
row = found[0] if found else 0
user, top = test_users[row], tops[row]
relevant = set(test.indices[test.indptr[user] : test.indptr[user + 1]].tolist())
hits = [rank for rank, item in enumerate(top, start=1) if item in relevant]
dcg = sum(1 / math.log2(rank + 1) for rank in hits)
ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
by_hand = {"precision": len(hits) / k, "recall": len(hits) / len(relevant), "ndcg": dcg / ideal}
computed = ranking_metrics(top[None, :], test, np.array([user]), k)
print(f"listener {data.user_ids[user]}: test songs {len(relevant)}, hits at ranks {hits}")
for name, value in by_hand.items():
    print(f"{name}@{k}: by hand {value:.4f}, models.evaluation {computed[f'{name}@{k}']:.4f}")
    assert math.isclose(value, computed[f"{name}@{k}"])

# %% [markdown]
# ## Three models, three MLflow runs
#
# `compare_recommenders` fits each model on the training part, scores it on the test part
# and logs one run per model to the experiment: parameters, metrics (`@` is written `_at_`
# in MLflow), the fit time, and the tags `model_family`, `dataset`, `evaluation_fingerprint`
# and the lake lineage (table, Delta version, cut-off). Nothing is registered: that is
# `encore train`'s job, with a promotion rule.

# %%
runs = compare_recommenders(settings, data, candidates, experiment, k, seed, report=print)

# %% [markdown]
# ## Reading the runs back
#
# `runs_table` searches the experiment (`mlflow.search_runs`) and keeps one row per run with
# the metrics under their usual names. Only runs on *this* evaluation data are comparable:
# the filter on the fingerprint keeps them (older runs of the experiment on another snapshot
# drop out), and the newest run of each model is kept.

# %%
evaluation = fingerprint(test)
table = runs_table(settings, [experiment])
ours = table[table["evaluation_fingerprint"] == evaluation].drop_duplicates("model")
assert set(ours["model"]) == set(candidates)
assert set(ours["run_id"]) == {run.run_id for run in runs}
metrics = [f"{name}@{k}" for name in ("ndcg", "precision", "recall", "map", "hit_rate")]
metrics += [f"coverage@{k}", f"novelty@{k}", "fit_seconds"]
comparison = ours.set_index("model")[metrics].sort_values(f"ndcg@{k}", ascending=False)
comparison.round(4)

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
for ax, metric in zip(axes, (f"ndcg@{k}", f"recall@{k}", f"coverage@{k}"), strict=True):
    ax.bar(comparison.index, comparison[metric])
    ax.set(title=metric)

# %% [markdown]
# ## The registered versions
#
# `encore train` logs to the experiment `encore-recommenders` and registers each version
# (aliases `champion` and `challenger`). Its runs on the same evaluation data are directly
# comparable with the ones above; the registry (`MlflowClient`) says which version serves.

# %%
trained = runs_table(settings, ["encore-recommenders"], f"tags.dataset = '{dataset}'").head(10)
client = registry_client(settings.mlflow.effective_tracking_uri)
versions = pd.DataFrame(
    [
        {
            "run_id": version.run_id,
            "registered": f"{version.name} v{version.version}",
            "aliases": ", ".join(
                alias
                for alias, number in client.get_registered_model(version.name).aliases.items()
                if str(number) == str(version.version)
            ),
        }
        for run_id in trained["run_id"]
        for version in client.search_model_versions(f"run_id = '{run_id}'")
    ],
    columns=["run_id", "registered", "aliases"],
)
registered = trained.merge(versions, on="run_id", how="left").assign(
    same_evaluation_data=lambda frame: frame["evaluation_fingerprint"] == evaluation
)
shown = ["model", "registered", "aliases", "same_evaluation_data", f"ndcg@{k}", f"recall@{k}"]
registered[[c for c in shown if c in registered.columns]]

# %% [markdown]
# ## Reading the comparison
#
# - NDCG rewards a hit near the top more than one at rank K; recall only counts hits.
# - A model that beats popularity on NDCG but covers few songs still feeds the head of the
#   long tail (`01_listening_exploration`); coverage and novelty show that trade-off.
# - One split is one draw: on a small lake the differences between models can be noise.
#   `encore evaluate` repeats the protocol over seeds (holdout datasets) with tuning, and
#   reports mean ± standard deviation.
