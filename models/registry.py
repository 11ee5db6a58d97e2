"""The MLflow side: training runs with lineage, a pyfunc that recommends, aliases.

Every run logs its parameters, metrics, dataset lineage (files' sha256, or lake table and
Delta version), the code's git commit and the fitted model. Each registered version gets
alias ``challenger``; :func:`decide_promotion`, the one promotion rule of every registered
model (recommenders and the ranker), moves ``champion`` to it only if it beats the current
champion on the registry metric *on the same evaluation data* (the test split's sha256
fingerprint is a tag of every version). A champion scored on other data is re-scored on the
challenger's data when the caller can (same listeners and catalogue); otherwise the pair is
"not comparable" and the champion stays. The decision and its reason are tags of the
challenger (``promotion.decision``, ``promotion``).
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
    decision: str = ""
    """``Promotion.decision``; empty when no promotion was decided (``--no-promote``)."""
    skipped: bool = False
    """True when no run was logged: a version trained on identical data existed."""


PROMOTED, FIRST, KEPT, NOT_COMPARABLE, FORCED, ALREADY = (
    "promoted",
    "first",
    "kept",
    "not comparable",
    "forced",
    "already champion",
)
"""The decisions :func:`decide_promotion` records in the ``promotion.decision`` tag."""


@dataclass(frozen=True)
class Promotion:
    """One promotion decision: what was compared, what was decided and why."""

    model: str
    version: str
    decision: str
    reason: str
    champion: str | None
    """The champion's version before the decision (None: there was none)."""
    value: float | None = None
    champion_value: float | None = None

    @property
    def promoted(self) -> bool:
        """Whether ``version`` holds ``champion`` after the decision."""
        return self.decision in (PROMOTED, FIRST, FORCED, ALREADY)

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "decision": self.decision,
            "promoted": self.promoted,
            "champion_before": self.champion,
            "reason": self.reason,
        }


Rescore = Callable[[Any], "float | None"]
"""Scores the champion (an MLflow ``ModelVersion``) on the challenger's evaluation data;
None when it cannot (another catalogue, listeners or feature set)."""


def registry_client(tracking_uri: str) -> MlflowClient:
    """An MLflow client of ``tracking_uri`` (tracking and registry), requests bounded."""
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
    promote: bool = True,
    version_tags: dict[str, str] | None = None,
) -> RegisteredVersion:
    """Log one training run, register its model, alias it challenger, maybe promote it.

    Args:
        evaluate_champion: scores a champion trained on other evaluation data on this
            run's evaluation data (used only when the champion has the same user and item
            ids); without it such a champion is never replaced.
        promote: decide the promotion now (:func:`decide_promotion`); False leaves it to
            ``encore models promote``.
        version_tags: more tags of the version (the training key of an idempotent run).

    Raises:
        ServiceError: the tracking server is unreachable, before or during the run.
    """
    with server_errors(tracking_uri):
        client = registry_client(tracking_uri)
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
                    **lineage_tags(lineage),
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
            **(version_tags or {}),
        }.items():
            client.set_model_version_tag(model_name, version, key, str(value))
        client.set_registered_model_alias(model_name, CHALLENGER, version)
        if not promote:
            reason = "registered as challenger; promotion left to `encore models promote`"
            return RegisteredVersion(model_name, version, run_id, False, reason)
        rescore = None
        if evaluate_champion is not None:
            rescore = recommender_rescore(client, model_name, user_ids, item_ids, evaluate_champion)
        decided = decide_promotion(client, model_name, version, rescore)
        return RegisteredVersion(
            model_name, version, run_id, decided.promoted, decided.reason, decided.decision
        )


def decide_promotion(
    client: MlflowClient,
    model_name: str,
    version: str,
    rescore: Rescore | None = None,
    force: bool = False,
) -> Promotion:
    """Move ``champion`` to ``version`` if it beats the champion on the same data.

    The challenger's metric, its value and its evaluation fingerprint are read from its
    version tags (``metric_name``, the metric's key, ``evaluation_fingerprint``), set at
    registration. The rule: no champion -> promoted (``first``); the champion already is
    ``version`` -> nothing changes; same fingerprint -> the champion's recorded value;
    otherwise ``rescore(champion)``, and when that is impossible (no ``rescore``, or it
    returns None) the pair is ``not comparable`` and the champion stays. Strictly better
    is promoted, a tie or worse is ``kept``. ``force`` (an operator's call) promotes
    whatever the comparison says, and says so. The decision, the reason and the champion
    compared with are tags of ``version``.
    """
    challenger = client.get_model_version(model_name, version)
    tags = challenger.tags
    metric = tags.get("metric_name", "ndcg@10")
    value = _float(tags.get(_metric_key(metric)))
    champion = current_version(client, model_name, CHAMPION)
    champion_value = None
    if champion is None:
        decision, reason = FIRST, "no champion to beat yet"
    elif str(champion.version) == str(version):
        decision, reason = ALREADY, f"v{version} already is the champion"
    else:
        how = "same evaluation data"
        if champion.tags.get("evaluation_fingerprint") == tags.get("evaluation_fingerprint"):
            champion_value = _float(champion.tags.get(_metric_key(metric)))
        else:
            how = "champion re-scored on the challenger's evaluation data"
            champion_value = rescore(champion) if rescore is not None else None
        if champion_value is None or value is None:
            decision = NOT_COMPARABLE
            reason = (
                f"champion v{champion.version} was scored on other evaluation data and "
                "cannot be scored on this one (another catalogue or listeners); not comparable"
            )
        elif value > champion_value:
            decision = PROMOTED
            reason = (
                f"{metric} {value:.4f} beats champion v{champion.version} "
                f"{champion_value:.4f} ({how})"
            )
        else:
            decision = KEPT
            reason = (
                f"{metric} {value:.4f} does not beat champion v{champion.version} "
                f"{champion_value:.4f} ({how})"
            )
    if force and decision in (KEPT, NOT_COMPARABLE):
        decision, reason = FORCED, f"forced by an operator ({reason})"
    promotion = Promotion(
        model_name,
        str(version),
        decision,
        reason,
        None if champion is None else str(champion.version),
        value,
        champion_value,
    )
    if decision == ALREADY:
        return promotion  # nothing changed: the tags of the first decision stay
    if promotion.promoted:
        client.set_registered_model_alias(model_name, CHAMPION, str(version))
        log.info("%s v%s promoted to champion: %s", model_name, version, reason)
    client.set_model_version_tag(model_name, str(version), "promotion", reason)
    client.set_model_version_tag(model_name, str(version), "promotion.decision", decision)
    client.set_model_version_tag(
        model_name, str(version), "promotion.champion", promotion.champion or ""
    )
    return promotion


def find_version(client: MlflowClient, model_name: str, tag: str, value: str):
    """The newest version of ``model_name`` whose tag ``tag`` is ``value``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return None
    found = [v for v in versions if v.tags.get(tag) == value]
    return max(found, key=lambda v: int(v.version)) if found else None


def recommender_rescore(
    client: MlflowClient,
    model_name: str,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    score: Callable[[Recommender], float],
) -> Rescore:
    """A :data:`Rescore` for recommenders: the champion is scored with ``score`` when it
    was trained on the same listeners and songs (its rows and columns then mean what the
    challenger's do); otherwise None (not comparable)."""

    def rescore(champion: Any) -> float | None:
        model, users, items = load_version(client, model_name, str(champion.version))
        same = np.array_equal(users.astype(str), np.asarray(user_ids).astype(str)) and (
            np.array_equal(items.astype(str), np.asarray(item_ids).astype(str))
        )
        return score(model) if same else None

    return rescore


def load_version(
    client: MlflowClient, model_name: str, version: str
) -> tuple[Recommender, np.ndarray, np.ndarray]:
    """The fitted recommender of one version and its user and item ids."""
    from models.base import Recommender

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{model_name}/{version}",
                dst_path=tmp,
                tracking_uri=client.tracking_uri,
                registry_uri=client._registry_uri,  # else a sqlite file in the cwd
            )
        )

        def one(filename: str) -> Path:
            found = sorted(folder.rglob(filename))
            if not found:
                raise NotFoundError(f"models:/{model_name}/{version} has no {filename}")
            return found[0]

        return (
            Recommender.load(one("model.pkl")),
            np.load(one("user_ids.npy"), allow_pickle=True),
            np.load(one("item_ids.npy"), allow_pickle=True),
        )


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
        client = registry_client(tracking_uri)
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


def lineage_tags(lineage: dict[str, Any]) -> dict[str, str]:
    tags = {}
    for name, digest in (lineage.get("sha256") or {}).items():
        tags[f"sha256.{name}"] = digest
    for key in ("table", "path", "delta_version", "cutoff_date"):
        if key in lineage:
            tags[f"lake.{key}"] = str(lineage[key])
    return tags


def _float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class IndexPublication:
    """The FAISS index of the version serving reads (:func:`publish_serving_index`)."""

    model: str
    version: str
    alias: str
    kind: str
    """The index's kind (``flat``, ``hnsw``...); ``none``: the model has no item vectors."""
    items: int
    built: bool
    """True: built and attached now; False: the version already carried it."""

    def line(self) -> str:
        if self.kind == "none":
            return (
                f"{self.model} v{self.version} ({self.alias}) has no item vectors: "
                "no index; serving scores with the model itself"
            )
        how = "built and published" if self.built else "already published with the version"
        return (
            f"{self.model} v{self.version} ({self.alias}): FAISS {self.kind} index of "
            f"{self.items:,} songs {how}"
        )


def publish_serving_index(
    tracking_uri: str, model_name: str, config: Any, alias: str = CHAMPION
) -> IndexPublication:
    """Make sure the version behind ``alias`` carries its FAISS index where serving loads
    it (the ``faiss`` artifacts of the version's run, :func:`serving.bundle.load_bundle`).

    A version registered with its index (``encore train`` builds one) is left as it is;
    one without (``--no-index``, or older) gets one built from its item vectors with
    ``config`` (:class:`models.index.IndexConfig`). Idempotent; the ``faiss_index`` tag
    names the kind either way.

    Raises:
        NotFoundError: no version holds ``alias``.
        ServiceError: the tracking server is unreachable.
    """
    from mlflow.exceptions import MlflowException

    from models.index import ItemIndex, ItemIndexError

    with server_errors(tracking_uri):
        client = registry_client(tracking_uri)
        version = current_version(client, model_name, alias)
        if version is None:
            raise NotFoundError(f"registered model {model_name} has no alias {alias!r}")
        number = str(version.version)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                folder = mlflow.artifacts.download_artifacts(
                    run_id=version.run_id,
                    artifact_path="faiss",
                    dst_path=tmp,
                    tracking_uri=tracking_uri,
                )
                index = ItemIndex.load(folder)
            except (OSError, ItemIndexError, MlflowException):  # none published: build it
                index = None
        if index is not None:
            if version.tags.get("faiss_index") != index.kind:
                client.set_model_version_tag(model_name, number, "faiss_index", index.kind)
            return IndexPublication(model_name, number, alias, index.kind, index.size, False)
        model, _, _ = load_version(client, model_name, number)
        if model.item_factors is None:
            client.set_model_version_tag(model_name, number, "faiss_index", "none")
            return IndexPublication(model_name, number, alias, "none", 0, False)
        index = ItemIndex.build(model.item_factors, config)
    publish_index(tracking_uri, model_name, number, index)
    return IndexPublication(model_name, number, alias, index.kind, index.size, True)
