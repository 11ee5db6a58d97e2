"""The evaluation protocol and the `encore evaluate` / `encore train` commands, on small data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from encore.cli import app
from models.protocol import ProtocolConfig, markdown_table, relative_gain, run_protocol
from models.splits import holdout_split
from models.synthetic import generate
from models.tuning import validation_split


@pytest.fixture(scope="module")
def data():
    return generate(users=250, items=300, genres=8, tags=50, seed=11)


def test_validation_is_carved_from_train_only(data) -> None:
    train, test = holdout_split(data.user_items, 0.1, seed=0)
    fit_part, validation = validation_split(train, 0.1, seed=0)
    assert validation.multiply(test).nnz == 0, "validation must never contain test items"
    assert abs(fit_part + validation - train).sum() == 0


def test_protocol_document(data) -> None:
    config = ProtocolConfig(
        models=["pop", "ease", "ensemble"], seeds=[0, 1], trials=0.2, cold_start=True
    )
    results = run_protocol(data, config)
    protocol = results["protocol"]
    assert protocol["seeds"] == [0, 1] and protocol["k"] == 10
    fingerprints = {f["test_sha256"] for f in protocol["evaluation_data"]}
    assert len(fingerprints) == 2, "each seed has its own test split"
    for name in ("pop", "ease", "ensemble", "lightfm-cold", "pop-cold"):
        assert 0 <= results["models"][name]["ndcg@10"] <= 1
        assert "ndcg@10_std" in results["models"][name]
    assert results["models"]["ease"]["ndcg@10"] > results["models"]["pop"]["ndcg@10"]
    members = results["params"]["ensemble"][0]["members"]
    assert set(members) >= {"tagease", "als"} and all("weight" in m for m in members.values())
    table = markdown_table(results)
    assert table.splitlines()[0].startswith("| model | ndcg@10")
    assert "Item cold start" in table
    gain = relative_gain(results, ("pop", "ease"))
    assert gain["best_model"] == "ensemble" and gain["best_baseline"] in ("pop", "ease")
    assert gain["gain"] == pytest.approx(
        results["models"]["ensemble"]["ndcg@10"]
        / results["models"][gain["best_baseline"]]["ndcg@10"]
        - 1
    )


def test_evaluate_command_writes_json_and_markdown(tmp_path) -> None:
    out = tmp_path / "results.json"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "synthetic",
            "--models",
            "pop,itemknn",
            "--seeds",
            "0",
            "--trials",
            "0",
            "--no-cold-start",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert set(document["models"]) == {"pop", "itemknn"}
    assert np.isfinite(document["models"]["itemknn"]["ndcg@10"])
    assert document["protocol"]["ranking"].startswith("full ranking")
    assert out.with_suffix(".md").read_text().startswith("| model |")


def test_unknown_dataset_fails_cleanly(tmp_path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "nope",
            "--out",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 1
    assert "unknown dataset" in result.output


def test_train_command_without_registry() -> None:
    result = CliRunner().invoke(
        app,
        [
            "train",
            "ease",
            "--dataset",
            "synthetic",
            "--params",
            '{"l2": 50}',
            "--no-register",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"ndcg@10"' in result.output


def test_merging_single_seed_runs_equals_one_multi_seed_run(data) -> None:
    from models.protocol import merge_results

    def run(seeds: list[int]) -> dict:
        return run_protocol(data, ProtocolConfig(models=["pop", "ease"], seeds=seeds, trials=0))

    merged = merge_results([run([0]), run([1])])
    together = run([0, 1])
    assert merged["protocol"]["seeds"] == [0, 1]
    for name in ("pop", "ease"):
        for key in ("ndcg@10", "ndcg@10_std", "recall@10"):
            assert merged["models"][name][key] == pytest.approx(together["models"][name][key])
