"""``encore train`` and ``encore evaluate``: thin commands over :mod:`models`.

Heavy imports (implicit, lightfm, faiss, mlflow) happen inside the commands so that
``encore --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from encore.parts import DemoStep, Part

console = Console(stderr=True)


def _split_names(models: str) -> list[str]:
    return [name.strip() for name in models.split(",") if name.strip()]


def evaluate_command(
    dataset: str = typer.Option("synthetic", help="hetrec-lastfm-2k, synthetic or lake."),
    models: str = typer.Option(
        "pop,itemknn,ease,als,bpr,lightfm,item2vec,rp3beta,tagknn,tagease,ensemble",
        help="Comma-separated model names.",
    ),
    seeds: str = typer.Option("0,1,2", help="Comma-separated split seeds."),
    trials: float = typer.Option(1.0, help="Tuning budget multiplier; 0 = default params."),
    k: int = typer.Option(10, help="Cut-off of every metric."),
    test_fraction: float = typer.Option(0.1, help="Share of each user's items held out."),
    cold_start: bool = typer.Option(True, help="Also run the item cold-start evaluation."),
    model_trials: str = typer.Option(
        "", help="Absolute Optuna trials for some models, e.g. 'lightfm=1,item2vec=3'."
    ),
    merge: str = typer.Option(
        "", help="Instead of running: merge these comma-separated result files (other seeds)."
    ),
    out: Path = typer.Option(Path("results.json"), help="JSON output; a .md table beside it."),
) -> None:
    """Run the offline protocol: tune on validation, score once on test, mean over seeds."""
    from encore.errors import EncoreError
    from encore.settings import get_settings
    from models.datasets import load_dataset
    from models.protocol import ProtocolConfig, merge_results, run_protocol

    settings = get_settings()
    if merge:
        results = merge_results([json.loads(Path(p).read_text()) for p in merge.split(",")])
        _write(results, out, k)
        return
    try:
        with console.status(f"loading {dataset}"):
            data = load_dataset(dataset, settings)
        console.print(f"dataset: {data.describe()}")
        config = ProtocolConfig(
            models=_split_names(models),
            seeds=[int(s) for s in seeds.split(",")],
            test_fraction=test_fraction,
            k=k,
            trials=trials,
            split="time" if dataset == "lake" else "holdout",
            cold_start=cold_start,
            model_trials={
                n.strip(): int(v) for n, v in (p.split("=") for p in model_trials.split(",") if p)
            },
        )
        with console.status("evaluating") as status:

            def report(message: str) -> None:
                status.update(message)
                console.print(f"  {message}")

            results = run_protocol(data, config, report)
    except EncoreError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=1) from error
    _write(results, out, k)


def _write(results: dict, out: Path, k: int) -> None:
    """Write the JSON and the markdown table, print the table and the quality goal."""
    from models import BASELINES
    from models.protocol import markdown_table, relative_gain

    results["goal"] = relative_gain(results, BASELINES, k)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    table = markdown_table(results, k)
    out.with_suffix(".md").write_text(table + "\n")
    typer.echo(table)
    if results["goal"]:
        goal = results["goal"]
        typer.echo(
            f"\nbest model {goal['best_model']} {goal['best_model_ndcg']:.4f} vs best baseline "
            f"{goal['best_baseline']} {goal['best_baseline_ndcg']:.4f}: {goal['gain']:+.1%}"
        )
    console.print(f"wrote {out} and {out.with_suffix('.md')}")


def train_command(
    model: str = typer.Argument(..., help="Model name: als, bpr, lightfm, ease, tagease..."),
    dataset: str = typer.Option("synthetic", help="hetrec-lastfm-2k, synthetic or lake."),
    params: str = typer.Option("{}", help="Model parameters as JSON, e.g. '{\"factors\": 64}'."),
    trials: int = typer.Option(0, help="Optuna trials on a validation split (0: no tuning)."),
    seed: int = typer.Option(0, help="Split seed."),
    name: str = typer.Option("", help="Registered model name (default encore-<model>)."),
    register: bool = typer.Option(True, help="Log to MLflow and register the model."),
) -> None:
    """Train, evaluate, index, log and register one model (challenger; champion if better)."""
    from encore.errors import EncoreError
    from encore.settings import get_settings
    from models.training import train

    settings = get_settings()
    try:
        with console.status(f"training {model}") as status:

            def report(message: str) -> None:
                status.update(message)
                console.print(f"  {message}")

            result = train(
                settings,
                model,
                dataset,
                params=json.loads(params),
                trials=trials,
                seed=seed,
                register=register,
                registered_name=name or None,
                report=report,
            )
    except (EncoreError, json.JSONDecodeError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=1) from error
    metrics = {k: round(v, 4) for k, v in result.metrics.items() if "@" in k}
    typer.echo(
        json.dumps(
            {
                "model": model,
                "params": result.params,
                "metrics": metrics,
                "faiss": result.index_metrics,
                "registered": result.registered.__dict__ if result.registered else None,
            },
            indent=2,
            default=str,
        )
    )


def demo_step(settings: object) -> None:
    """Demo: train ALS on synthetic data, register it, show an artist's neighbours."""
    from models.training import train

    result = train(
        settings,
        "als",
        "synthetic",
        params={"factors": 32, "iterations": 10},  # type: ignore[arg-type]
        report=lambda m: console.print(f"  {m}"),
    )
    ids, _ = result.model.similar_items(0, N=6)
    console.print(f"  artists most similar to artist 0: {ids[1:].tolist()}")


def register(app: typer.Typer) -> None:
    """Add the model commands to the ``encore`` app."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)


PART = Part(
    "models",
    commands=register,
    demo_steps=(DemoStep(20, "recommenders: train ALS, register, similar artists", demo_step),),
)
