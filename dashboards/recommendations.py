"""The recommenders for analysts: registered versions with their aliases and offline metrics
(MLflow), and the online A/B experiment's figures (:func:`models.ab.ab_report`).

Input: the MLflow registry at ``settings.mlflow.effective_tracking_uri`` (each version's
training run holds its evaluation metrics, logged as ``ndcg_at_10`` for ``ndcg@10`` by
:mod:`models.registry`) and ``silver.plays`` for the A/B report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from encore.settings import Settings

if TYPE_CHECKING:
    import polars as pl
    from mlflow import MlflowClient

    from dashboards.metrics import Filters
    from models.ab import AbReport

VERSIONS_PER_MODEL = 20
"""The newest versions shown per registered model."""


def registered_models(settings: Settings) -> list[str]:
    """Names of every registered model, the serving model first.

    Raises:
        ServiceError: the tracking server does not answer.
    """
    uri = settings.mlflow.effective_tracking_uri
    with _registry(uri) as client:
        names = sorted(model.name for model in client.search_registered_models())
    serving = settings.serving.model_name
    return sorted(names, key=lambda name: name != serving)


def model_versions(settings: Settings, names: list[str]) -> pl.DataFrame:
    """One row per version of each model in ``names`` (the newest ``VERSIONS_PER_MODEL``):
    model, version, aliases, created, family, promotion, then one column per offline metric
    of its training run (``ndcg@10``...; null where a run lacks it), newest first.

    Raises:
        ServiceError: the tracking server does not answer.
    """
    import polars as pl

    rows = []
    with _registry(settings.mlflow.effective_tracking_uri) as client:
        for name in names:
            # search results carry no aliases: the registered model holds them
            aliases: dict[str, list[str]] = {}
            for alias, number in client.get_registered_model(name).aliases.items():
                aliases.setdefault(str(number), []).append(alias)
            versions = client.search_model_versions(
                f"name = '{name}'", max_results=VERSIONS_PER_MODEL, order_by=["version_number DESC"]
            )
            for version in versions:
                run = client.get_run(version.run_id) if version.run_id else None
                metrics = run.data.metrics if run else {}
                rows.append(
                    {
                        "model": name,
                        "version": int(version.version),
                        "aliases": ", ".join(sorted(aliases.get(str(version.version), []))),
                        "created": datetime.fromtimestamp(version.creation_timestamp / 1000, UTC),
                        "family": (run.data.tags.get("model_family", "") if run else ""),
                        "promotion": version.tags.get("promotion.decision", ""),
                        **{key.replace("_at_", "@"): value for key, value in metrics.items()},
                    }
                )
    if not rows:
        return pl.DataFrame(schema={"model": pl.String, "version": pl.Int64, "aliases": pl.String})
    frame = pl.DataFrame(rows, infer_schema_length=None)
    fixed = ["model", "version", "aliases", "created", "family", "promotion"]
    metric_names = sorted(name for name in frame.columns if name not in fixed)
    return frame.select(*fixed, *metric_names).sort(["model", "version"], descending=[False, True])


@contextlib.contextmanager
def _registry(uri: str) -> Iterator[MlflowClient]:
    """A client of the registry at ``uri``; an unreachable server is one ServiceError within
    seconds (:mod:`models.tracking`). Not ``models.registry``'s client: that module loads
    MLflow's model flavours, seconds of import a page does not need."""
    from mlflow import MlflowClient

    from models.tracking import require, server_errors

    require(uri)
    with server_errors(uri):
        yield MlflowClient(tracking_uri=uri, registry_uri=uri)


@dataclass(frozen=True)
class AbFigures:
    """The A/B report of a range, as tables: ``variants`` (variant, listeners, plays, and
    each measure with its 95% interval: ``plays_per_listener``, ``..._low``, ``..._high``, the
    same for ``skip_rate`` and ``completion_rate``) and ``differences`` (variant minus the
    baseline, same measures); ``report`` is the report itself."""

    report: AbReport
    variants: pl.DataFrame
    differences: pl.DataFrame


MEASURES = ("plays_per_listener", "skip_rate", "completion_rate")


def ab_figures(settings: Settings, filters: Filters) -> AbFigures:
    """The A/B report over the filters' days (countries and devices do not apply: the
    report compares listeners, the unit its statistics need).

    Raises:
        NotFoundError: no silver plays, or none in the range carries a variant.
    """
    import polars as pl

    from models.ab import ab_report

    report = ab_report(settings, filters.start, filters.end)

    def measures(row) -> dict:
        out = {}
        for name in MEASURES:
            estimate = getattr(row, name)
            out |= {
                name: estimate.value,
                f"{name}_low": estimate.low,
                f"{name}_high": estimate.high,
            }
        return out

    variants = pl.DataFrame(
        [
            {"variant": v.variant, "listeners": v.listeners, "plays": v.plays, **measures(v)}
            for v in report.variants
        ],
        infer_schema_length=None,
    )
    differences = pl.DataFrame(
        [{"variant": d.variant, "baseline": d.baseline, **measures(d)} for d in report.differences],
        schema=_difference_schema(),
    )
    return AbFigures(report, variants, differences)


def _difference_schema() -> dict:
    import polars as pl

    schema = {"variant": pl.String, "baseline": pl.String}
    for name in MEASURES:
        schema |= {name: pl.Float64, f"{name}_low": pl.Float64, f"{name}_high": pl.Float64}
    return schema
