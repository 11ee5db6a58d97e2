"""Recommenders compared in the platform's MLflow: each model one run, read back as a table
whose numbers are the ones evaluated here."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from encore.errors import ServiceError
from encore.settings import Settings
from models import create_recommender
from models.comparison import compare_recommenders, runs_table
from models.datasets import fingerprint
from models.evaluation import evaluate
from models.synthetic import generate
from models.training import split_for_training

pytestmark = pytest.mark.integration


def test_each_model_is_a_run_and_the_table_holds_its_metrics(platform: Settings) -> None:
    data = generate(users=60, items=80, genres=4, tags=10, mean_items_per_user=8, seed=3)
    experiment = f"comparison-{uuid.uuid4().hex[:8]}"
    candidates = {"pop": {}, "itemknn": {"k": 20}}
    runs = compare_recommenders(platform, data, candidates, experiment=experiment, k=5)
    assert [run.model for run in runs] == ["pop", "itemknn"]

    train, test = split_for_training(data, seed=0)
    expected = evaluate(create_recommender("itemknn", k=20).fit(train), train, test, k=5)
    table = runs_table(platform, [experiment, "no-such-experiment"])
    assert sorted(table["model"]) == ["itemknn", "pop"]
    assert set(table["experiment"]) == {experiment}
    assert set(table["evaluation_fingerprint"]) == {fingerprint(test)}
    row = table[table["model"] == "itemknn"].iloc[0]
    assert row["run_id"] == runs[1].run_id
    for metric in ("ndcg@5", "recall@5", "coverage@5"):
        assert row[metric] == pytest.approx(expected[metric])
    assert np.isfinite(row["fit_seconds"])

    only_pop = runs_table(platform, [experiment], filter_string="tags.model_family = 'pop'")
    assert list(only_pop["model"]) == ["pop"]
    assert runs_table(platform, ["no-such-experiment"]).empty


def test_an_unreachable_server_fails_before_any_fit() -> None:
    settings = Settings(mlflow={"tracking_uri": "http://127.0.0.1:9"})
    data = generate(users=10, items=10, genres=2, tags=2, mean_items_per_user=3)
    with pytest.raises(ServiceError, match=r"127\.0\.0\.1:9"):
        compare_recommenders(settings, data, {"pop": {}})
