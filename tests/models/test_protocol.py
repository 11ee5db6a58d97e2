"""The evaluation protocol and the `encore evaluate` / `encore train` commands, on small data."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from encore.cli import app
from models.protocol import (
    ProtocolConfig,
    markdown_table,
    relative_gain,
    run_evaluation,
    run_protocol,
)
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
    args = ["evaluate", "--dataset", "synthetic", "--models", "pop,rp3beta", "--trials", "0"]
    result = CliRunner().invoke(app, [*args, "--seeds", "0", "--no-cold-start", "--out", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert set(document["models"]) == {"pop", "rp3beta"}
    assert document["protocol"]["split"] == "holdout" and document["protocol"]["seeds"] == [0]
    assert document["protocol"]["ranking"].startswith("full ranking")
    # the same protocol run through the library gives the same numbers
    expected = run_protocol(
        generate(), ProtocolConfig(models=["pop", "rp3beta"], seeds=[0], trials=0)
    )
    for name in ("pop", "rp3beta"):
        assert document["models"][name]["ndcg@10"] == pytest.approx(
            expected["models"][name]["ndcg@10"]
        )
    table = out.with_suffix(".md").read_text()
    assert table.strip() == markdown_table(document)
    # what it prints: the table, then the goal line (rp3beta is no baseline, pop is)
    goal = document["goal"]
    assert goal["best_model"] == "rp3beta" and goal["best_baseline"] == "pop"
    assert result.stdout.strip() == (
        f"{table.strip()}\n\nbest model rp3beta {goal['best_model_ndcg']:.4f} vs best "
        f"baseline pop {goal['best_baseline_ndcg']:.4f}: {goal['gain']:+.1%}"
    )


def test_evaluate_merges_runs_of_other_seeds(tmp_path) -> None:
    from encore.settings import Settings

    config = ProtocolConfig(models=["pop", "ease"], seeds=[0], trials=0, cold_start=False)
    outs = []
    for seed in (0, 1):
        out = tmp_path / f"seed{seed}.json"
        run_evaluation(Settings(), "synthetic", replace(config, seeds=[seed]), out)
        outs.append(out)
    merged = run_evaluation(Settings(), "nope", config, tmp_path / "all.json", merge=outs)
    assert merged.results["protocol"]["seeds"] == [0, 1]
    assert merged.written == (tmp_path / "all.json", tmp_path / "all.md")
    assert json.loads((tmp_path / "all.json").read_text())["protocol"]["seeds"] == [0, 1]
    per_seed = [json.loads(out.read_text())["models"]["ease"]["ndcg@10"] for out in outs]
    assert merged.results["models"]["ease"]["ndcg@10"] == pytest.approx(np.mean(per_seed))
    # pop and ease are both baselines: no goal line, the table alone
    assert merged.text == markdown_table(merged.results)


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
    assert "unknown dataset 'nope'; expected one of hetrec-lastfm-2k, synthetic, lake" in (
        " ".join(result.output.split())
    )
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "r.md").exists()


def test_train_command_without_registry() -> None:
    from encore.settings import Settings
    from models.training import train

    result = CliRunner().invoke(
        app,
        ["train", "ease", "--dataset", "synthetic", "--params", '{"l2": 50}', "--no-register"],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    expected = train(Settings(), "ease", "synthetic", params={"l2": 50}, register=False)
    assert printed["model"] == "ease" and printed["params"]["l2"] == 50
    assert printed["metrics"]["ndcg@10"] == round(expected.metrics["ndcg@10"], 4)
    assert printed["registered"] is None


def test_train_command_fails_cleanly_on_a_bad_model() -> None:
    result = CliRunner().invoke(app, ["train", "nope", "--no-register"])
    assert result.exit_code == 1
    assert "unknown recommender 'nope'" in result.output


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
