"""``encore train``, ``encore evaluate`` and ``encore models promote|publish-index``: thin
commands over :mod:`models`.

Heavy imports (implicit, lightfm, faiss, mlflow) happen inside the commands so that
``encore --help`` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from encore.parts import DemoStep, Part

if TYPE_CHECKING:
    from rich.status import Status

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
    from models.protocol import ProtocolConfig, run_evaluation

    config = ProtocolConfig(
        models=_split_names(models),
        seeds=[int(s) for s in _split_names(seeds)],
        test_fraction=test_fraction,
        k=k,
        trials=trials,
        cold_start=cold_start,
        model_trials={n: int(v) for n, v in (p.split("=") for p in _split_names(model_trials))},
    )
    try:
        with console.status("evaluating") as status:
            outcome = run_evaluation(
                get_settings(),
                dataset,
                config,
                out,
                merge=[Path(p) for p in _split_names(merge)],
                report=_reporter(status),
            )
    except EncoreError as error:
        raise _fail(error) from error
    typer.echo(outcome.text)
    console.print(f"wrote {' and '.join(str(path) for path in outcome.written)}")


def _fail(error: Exception) -> typer.Exit:
    """The error as one line on stderr (never wrapped, brackets shown as written); exit 1."""
    console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
    return typer.Exit(code=1)


def _reporter(status: Status) -> Callable[[str], None]:
    """Progress for the library: the spinner shows the latest line, the log keeps all."""

    def report(message: str) -> None:
        status.update(message)
        console.print(f"  {message}")

    return report


def train_command(
    model: str = typer.Argument(..., help="Model name: als, bpr, lightfm, ease, tagease..."),
    dataset: str = typer.Option("synthetic", help="hetrec-lastfm-2k, synthetic or lake."),
    params: str = typer.Option("{}", help="Model parameters as JSON, e.g. '{\"factors\": 64}'."),
    trials: int = typer.Option(0, help="Optuna trials on a validation split (0: no tuning)."),
    seed: int = typer.Option(0, help="Split seed."),
    name: str = typer.Option("", help="Registered model name (default encore-<model>)."),
    serving: bool = typer.Option(
        False, "--serving", help="Register as the model the service serves (serving.model_name)."
    ),
    register: bool = typer.Option(True, help="Log to MLflow and register the model."),
    cutoff: str = typer.Option(
        "", help="Lake snapshot (YYYY-MM-DD) for --dataset lake; default: the latest."
    ),
    promote: bool = typer.Option(
        True, help="Decide the promotion now; --no-promote: challenger only (`models promote`)."
    ),
    index: bool = typer.Option(True, help="Build the FAISS index and register it with it."),
    skip_identical: bool = typer.Option(
        True,
        help="Train nothing when a version with the same training key (model, data content, "
        "cut-off, parameters, seed, code commit) exists; it becomes the challenger again.",
    ),
) -> None:
    """Train, evaluate, index, log and register one model (challenger; champion if better)."""
    from encore.errors import EncoreError
    from encore.settings import get_settings
    from models.training import train

    settings = get_settings()
    if serving:
        name = name or settings.serving.model_name
    try:
        with console.status(f"training {model}") as status:
            result = train(
                settings,
                model,
                dataset,
                params=json.loads(params),
                trials=trials,
                seed=seed,
                register=register,
                registered_name=name or None,
                report=_reporter(status),
                cutoff=cutoff or None,
                promote=promote,
                index=index,
                skip_identical=skip_identical,
            )
    except (EncoreError, json.JSONDecodeError) as error:
        raise _fail(error) from error
    if result is None:  # the reporter said which version already holds this training
        typer.echo(json.dumps({"skipped": True, "registered": None}, indent=2))
        return
    typer.echo(json.dumps(result.summary(), indent=2, default=str))


models_app = typer.Typer(help="The model registry: promotion, published indexes.")


@models_app.command("promote")
def promote_command(
    name: str = typer.Argument(
        "", help="Registered model, e.g. encore-ranker (default: the serving model)."
    ),
    version: str = typer.Option("", help="The version to decide on (default: the challenger)."),
    force: bool = typer.Option(
        False, help="Promote whatever the comparison says (an operator's call, recorded)."
    ),
) -> None:
    """Promote the challenger only if it beats the champion on the same data; print and
    record (version tags ``promotion.decision``, ``promotion``) the decision and why."""
    from encore.errors import EncoreError
    from encore.settings import get_settings
    from models.training import promote_version

    settings = get_settings()
    name = name or settings.serving.model_name
    try:
        with console.status(f"deciding {name}") as status:
            decided = promote_version(
                settings, name, version or None, force=force, report=_reporter(status)
            )
    except EncoreError as error:
        raise _fail(error) from error
    console.print(f"{name} v{decided.version}: {decided.decision}: {escape(decided.reason)}")
    typer.echo(json.dumps(decided.summary(), indent=2))


@models_app.command("publish-index")
def publish_index_command(
    name: str = typer.Argument("", help="Registered model (default: the serving model)."),
    alias: str = typer.Option("champion", help="The alias whose version serving loads."),
) -> None:
    """Make sure the version behind the alias carries its FAISS index where serving loads
    it (built from its item vectors if it was registered without)."""
    from encore.errors import EncoreError
    from encore.settings import get_settings
    from models.index import IndexConfig
    from models.registry import publish_serving_index

    settings = get_settings()
    name = name or settings.serving.model_name
    try:
        with console.status(f"publishing the index of {name}@{alias}"):
            published = publish_serving_index(
                settings.mlflow.effective_tracking_uri,
                name,
                IndexConfig.from_settings(settings),
                alias,
            )
    except EncoreError as error:
        raise _fail(error) from error
    typer.echo(published.line())


def train_ranker_command(
    split: str = typer.Option(
        "",
        help="Split time (ISO date or date-time, UTC): test requests from it on. "
        "Default: the last --test-days of silver.",
    ),
    days: float = typer.Option(7.0, help="Span of the training requests before the split, days."),
    test_days: float = typer.Option(1.0, help="Span of the test requests after the split, days."),
    step_hours: float = typer.Option(24.0, help="Hours between two request times."),
    window_hours: float = typer.Option(24.0, help="Label window after each request, hours."),
    max_queries: int = typer.Option(300, help="Listeners asked per request time, at most."),
    fit_to_lake: bool = typer.Option(
        False, help="Spread the requests over the plays silver holds (a lake of a few hours)."
    ),
    fit_young_lake: bool = typer.Option(
        False,
        help="As --fit-to-lake, but only when silver holds less history than --days before "
        "the split (what a schedule on a young lake wants); said when it happens.",
    ),
    seed: int = typer.Option(0, help="Seed of the listener samples and of LightGBM."),
    register: bool = typer.Option(True, help="Log to MLflow and register the ranker."),
    skip_identical: bool = typer.Option(
        True,
        help="Fit nothing when a version was trained on the same ranking data, parameters, "
        "seed and code; it becomes the challenger again.",
    ),
) -> None:
    """Train the learned ranker on point-in-time Feast features over labelled impressions
    from silver plays; compare it with the candidate model alone; register it."""
    from datetime import datetime, timedelta

    from encore.errors import EncoreError
    from encore.settings import get_settings
    from models.ranker_training import train_ranker_on_lake, utc

    try:
        split_at = utc(datetime.fromisoformat(split)) if split else None

        def whole_seconds(seconds: float) -> timedelta:
            # 5 h as days is 0.2083...: without rounding the request times drift off the hour
            return timedelta(seconds=round(seconds))

        with console.status("training the ranker") as status:
            result = train_ranker_on_lake(
                get_settings(),
                split_at,
                train_span=whole_seconds(days * 86400),
                test_span=whole_seconds(test_days * 86400),
                step=whole_seconds(step_hours * 3600),
                label_window=whole_seconds(window_hours * 3600),
                max_queries_per_step=max_queries,
                fit_to_lake=fit_to_lake,
                fit_young_lake=fit_young_lake,
                register=register,
                seed=seed,
                report=_reporter(status),
                skip_identical=skip_identical,
            )
    except (EncoreError, ValueError) as error:
        raise _fail(error) from error
    if result is None:  # the reporter said which version already holds this training
        typer.echo(json.dumps({"skipped": True, "registered": None}, indent=2))
        return
    typer.echo(result.table())
    typer.echo(json.dumps(result.summary(), indent=2, default=str))


def demo_step(settings: object) -> None:
    """Demo: train ALS on synthetic data, register it, show an artist's neighbours."""
    from models.training import train

    result = train(
        settings,
        "als",
        "synthetic",
        params={"factors": 32, "iterations": 10},  # type: ignore[arg-type]
        # not encore-als: that name is the service's, trained on the lake in the serving step
        registered_name="encore-als-synthetic",
        report=lambda m: console.print(f"  {m}"),
    )
    ids, _ = result.model.similar_items(0, N=6)
    console.print(f"  artists most similar to artist 0: {ids[1:].tolist()}")


def register(app: typer.Typer) -> None:
    """Add the model commands to the ``encore`` app."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("train-ranker")(train_ranker_command)
    app.add_typer(models_app, name="models")


PART = Part(
    "models",
    commands=register,
    demo_steps=(DemoStep(20, "recommenders: train ALS, register, similar artists", demo_step),),
)
