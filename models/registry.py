"""The MLflow side: training runs with lineage, a pyfunc that recommends, aliases.

Every run logs its parameters, metrics, dataset lineage (files' sha256, or lake table and
Delta version), the code's git commit and the fitted model. Each registered version gets
alias ``challenger``; it becomes ``champion`` only if it beats the current champion on the
registry metric *on the same evaluation data* (the test split's sha256 fingerprint is a tag
of every version). A champion scored on other data is re-scored on the challenger's data
when both share the item catalogue; otherwise the challenger is not promoted.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import scipy.sparse as sp

from encore.errors import NotFoundError
from encore.settings import REPO_ROOT
from models.tracking import bound_requests, server_errors

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from models.base import Recommender
    from models.index import ItemIndex

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"


def git_commit() -> str:
    """The checkout's commit, ``+dirty`` when files differ from it; ``unknown`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "models"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """Recommends for users by external id.

    Input: a DataFrame with a ``user_id`` column (and optionally ``n``). Output: one row
    per (user, rank) with ``user_id``, ``rank``, ``item_id``, ``score``. Items the user
    played in the training data are filtered.
    """

    def load_context(self, context: Any) -> None:
        from models.base import Recommender

        self.model = Recommender.load(context.artifacts["model"])
        self.user_ids = np.load(context.artifacts["user_ids"], allow_pickle=True)
        self.item_ids = np.load(context.artifacts["item_ids"], allow_pickle=True)
        self.user_items = sp.load_npz(context.artifacts["user_items"]).tocsr()
        self.position = {uid: i for i, uid in enumerate(self.user_ids.tolist())}

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None):
        import pandas as pd

        n = int((params or {}).get("n", 10))
        rows = []
        for user_id in model_input["user_id"].tolist():
            key = type(self.user_ids[0])(user_id) if len(self.user_ids) else user_id
            if key not in self.position:
                continue  # unknown users get nothing here; serving falls back to popular
            index = self.position[key]
            ids, scores = self.model.recommend(index, self.user_items[index], N=n)
            for rank, (item, score) in enumerate(zip(ids, scores, strict=True), start=1):
                if item >= 0:
                    rows.append((user_id, rank, self.item_ids[item], float(score)))
        return pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "score"])


@dataclass
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    promoted: bool
    reason: str


def _client(tracking_uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    bound_requests()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    names = ("numpy", "scipy", "pandas", "implicit", "lightfm-next", "faiss-cpu", "mlflow")
    return [f"{name}=={version(name)}" for name in names]


def log_and_register(
    tracking_uri: str,
    model_name: str,
    model: Recommender,
    user_items: sp.csr_matrix,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    params: dict[str, Any],
    metrics: dict[str, float],
    lineage: dict[str, Any],
    evaluation_fingerprint: str,
    metric: str = "ndcg@10",
    index: ItemIndex | None = None,
    index_metrics: dict[str, Any] | None = None,
    experiment: str = "encore-recommenders",
    evaluate_champion: Callable[[Recommender], float] | None = None,
) -> RegisteredVersion:
    """Log one training run, register its model, alias it challenger, maybe promote it.

    Args:
        evaluate_champion: scores a champion trained on other evaluation data on this
            run's evaluation data; without it such a champion is never replaced.

    Raises:
        ServiceError: the tracking server is unreachable, before or during the run.
    """
    with server_errors(tracking_uri):
        client = _client(tracking_uri)
        mlflow.set_experiment(experiment)
        commit = git_commit()
        with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
            folder = Path(tmp)
            mlflow.log_params({k: _param(v) for k, v in params.items()})
            mlflow.log_metrics(
                {_metric_key(k): float(v) for k, v in metrics.items() if isinstance(v, int | float)}
            )
            mlflow.set_tags(
                {
                    "git_commit": commit,
                    "model_family": model.name,
                    "dataset": lineage.get("name", ""),
                    "dataset_source": lineage.get("source", ""),
                    "evaluation_fingerprint": evaluation_fingerprint,
                    **_lineage_tags(lineage),
                }
            )
            mlflow.log_dict(lineage, "lineage.json")
            artifacts = {
                "model": str(model.save(folder / "model.pkl")),
                "user_ids": str(_save_npy(folder / "user_ids.npy", user_ids)),
                "item_ids": str(_save_npy(folder / "item_ids.npy", item_ids)),
                "user_items": str(folder / "user_items.npz"),
            }
            sp.save_npz(artifacts["user_items"], sp.csr_matrix(user_items))
            if index is not None:
                index.save(folder / "faiss")
                mlflow.log_artifacts(str(folder / "faiss"), "faiss")
                if index_metrics:
                    mlflow.log_metrics(
                        {
                            f"faiss_{_metric_key(k)}": float(v)
                            for k, v in index_metrics.items()
                            if isinstance(v, int | float)
                        }
                    )
            info = mlflow.pyfunc.log_model(
                name="model",
                signature=_signature(user_ids, item_ids),
                python_model=RecommenderPyfunc(),
                artifacts=artifacts,
                code_paths=[str(REPO_ROOT / "models")],
                pip_requirements=_pip_requirements(),
                registered_model_name=model_name,
                await_registration_for=60,
            )
            run_id = run.info.run_id
        version = str(info.registered_model_version)
        for key, value in {
            _metric_key(metric): metrics[metric],
            "evaluation_fingerprint": evaluation_fingerprint,
            "git_commit": commit,
            "run_id": run_id,
            "metric_name": metric,
        }.items():
            client.set_model_version_tag(model_name, version, key, str(value))
        client.set_registered_model_alias(model_name, CHALLENGER, version)
        promoted, reason = promote_if_better(
            client,
            model_name,
            version,
            metric,
            float(metrics[metric]),
            evaluation_fingerprint,
            evaluate_champion,
        )
        return RegisteredVersion(model_name, version, run_id, promoted, reason)


def promote_if_better(
    client: MlflowClient,
    model_name: str,
    version: str,
    metric: str,
    value: float,
    fingerprint: str,
    evaluate_champion: Callable[[Recommender], float] | None = None,
) -> tuple[bool, str]:
    """Move ``champion`` to ``version`` if it beats the champion on the same data."""
    champion = current_version(client, model_name, CHAMPION)
    if champion is None:
        reason = "first version with a metric: no champion to beat yet"
    else:
        if champion.tags.get("evaluation_fingerprint") == fingerprint:
            champion_value = float(champion.tags[_metric_key(metric)])
            how = "same evaluation data"
        elif evaluate_champion is not None:
            champion_value = evaluate_champion(load_recommender(client, model_name, CHAMPION))
            how = "champion re-scored on the challenger's evaluation data"
        else:
            reason = (
                f"champion v{champion.version} was scored on other evaluation data "
                "and cannot be re-scored; not promoted"
            )
            client.set_model_version_tag(model_name, version, "promotion", reason)
            return False, reason
        if value <= champion_value:
            reason = (
                f"{metric} {value:.4f} does not beat champion v{champion.version} "
                f"{champion_value:.4f} ({how})"
            )
            client.set_model_version_tag(model_name, version, "promotion", reason)
            return False, reason
        reason = (
            f"{metric} {value:.4f} beats champion v{champion.version} {champion_value:.4f} ({how})"
        )
    client.set_registered_model_alias(model_name, CHAMPION, version)
    client.set_model_version_tag(model_name, version, "promotion", reason)
    log.info("%s v%s promoted to champion: %s", model_name, version, reason)
    return True, reason


def current_version(client: MlflowClient, model_name: str, alias: str):
    """The model version behind ``alias``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def load_recommender(client: MlflowClient, model_name: str, alias: str) -> Recommender:
    """The fitted :class:`Recommender` behind ``models:/<name>@<alias>``."""
    from models.base import Recommender

    version = current_version(client, model_name, alias)
    if version is None:
        raise NotFoundError(f"registered model {model_name} has no alias {alias!r}")
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{model_name}@{alias}", dst_path=tmp
        )
        candidates = list(Path(path).rglob("model.pkl"))
        if not candidates:
            raise NotFoundError(f"models:/{model_name}@{alias} has no model.pkl artifact")
        return Recommender.load(candidates[0])


def publish_index(tracking_uri: str, model_name: str, version: str, index: ItemIndex) -> None:
    """Attach an index to the run of the model version whose vectors it holds."""
    with server_errors(tracking_uri):
        client = _client(tracking_uri)
        run_id = client.get_model_version(model_name, version).run_id
        with tempfile.TemporaryDirectory() as tmp:
            index.save(Path(tmp) / "faiss")
            client.log_artifacts(run_id, str(Path(tmp) / "faiss"), "faiss")
        client.set_model_version_tag(model_name, version, "faiss_index", index.kind)


def _signature(user_ids: np.ndarray, item_ids: np.ndarray):
    """Input ``user_id``; output (user_id, rank, item_id, score); param ``n`` (default 10)."""
    import pandas as pd
    from mlflow.models import infer_signature

    example_in = pd.DataFrame({"user_id": np.asarray(user_ids[:1])})
    example_out = pd.DataFrame(
        {
            "user_id": np.asarray(user_ids[:1]),
            "rank": [1],
            "item_id": np.asarray(item_ids[:1]),
            "score": [0.0],
        }
    )
    return infer_signature(example_in, example_out, params={"n": 10})


def _save_npy(path: Path, values: np.ndarray) -> Path:
    np.save(path, np.asarray(values), allow_pickle=True)
    return path


def _param(value: Any) -> str:
    return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)


def _metric_key(key: str) -> str:
    return key.replace("@", "_at_")


def _lineage_tags(lineage: dict[str, Any]) -> dict[str, str]:
    tags = {}
    for name, digest in (lineage.get("sha256") or {}).items():
        tags[f"sha256.{name}"] = digest
    for key in ("table", "path", "delta_version", "cutoff_date"):
        if key in lineage:
            tags[f"lake.{key}"] = str(lineage[key])
    return tags
