"""The model the service answers with, and how it follows the registry.

A :class:`ModelBundle` is one registered model version loaded for serving: the fitted
recommender, its id maps, the listeners' training rows (to leave out what they played) and
the FAISS index published with the version. :class:`ModelHolder` keeps the bundle behind
the serving alias (``champion``): :meth:`ModelHolder.refresh` loads a newly aliased version
off to the side and swaps one reference, so a request sees the old bundle or the new one,
whole, never a mix, and never waits for a load.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from encore.errors import NotFoundError
from encore.settings import Settings

if TYPE_CHECKING:
    import scipy.sparse as sp
    from mlflow import MlflowClient

    from models.base import Recommender
    from models.index import ItemIndex

log = logging.getLogger(__name__)

Scored = list[tuple[str, float]]
"""(song id, score), best first."""


@dataclass
class ModelBundle:
    name: str
    version: str
    run_id: str
    model: Recommender
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_items: sp.csr_matrix
    index: ItemIndex | None
    _user_position: dict[str, int] = field(init=False, repr=False)
    _item_position: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._user_position = {str(u): i for i, u in enumerate(self.user_ids.tolist())}
        self._item_position = {str(s): i for i, s in enumerate(self.item_ids.tolist())}

    def knows_user(self, user_id: str) -> bool:
        return user_id in self._user_position

    def knows_song(self, song_id: str) -> bool:
        return song_id in self._item_position

    def played(self, user_id: str) -> set[str]:
        """The songs the model saw the listener play (its training rows)."""
        row = self._user_position.get(user_id)
        if row is None:
            return set()
        return {str(self.item_ids[i]) for i in self.user_items[row].indices}

    def recommend(self, user_id: str, n: int) -> Scored:
        """The listener's top ``n`` songs they have not played; empty for an unknown one.

        With user and item vectors and an index, a FAISS search of the listener's vector;
        otherwise the model's own scoring (popularity, EASE, item k-NN have no user vector).
        """
        row = self._user_position.get(user_id)
        if row is None:
            return []
        played = self.user_items[row].indices
        users = self.model.user_factors
        if self.index is not None and users is not None:
            k = min(n + len(played), self.index.size)
            scores, ids = self.index.search(users[row : row + 1].astype(np.float32), k)
            seen = set(played.tolist())
            pairs = [
                (str(self.item_ids[i]), float(s))
                for s, i in zip(scores[0], ids[0], strict=True)
                if i >= 0 and i not in seen
            ]
            return pairs[:n]
        ids, scores = self.model.recommend(row, self.user_items[row], N=n)
        pairs = zip(ids, scores, strict=True)
        return [(str(self.item_ids[i]), float(s)) for i, s in pairs if i >= 0]

    def recommend_many(self, user_ids: list[str], n: int) -> dict[str, Scored]:
        """:meth:`recommend` for many listeners at once (unknown ones left out).

        With an index, one FAISS search for all their vectors (the batch is what makes a
        precompute of 100k listeners take seconds, not minutes): ``k`` covers the heaviest
        listener's played songs, so each list still has ``n`` unplayed songs. Models
        without user vectors score listener by listener.
        """
        known = [(u, self._user_position[u]) for u in user_ids if u in self._user_position]
        if not known:
            return {}
        users = self.model.user_factors
        if self.index is None or users is None:
            return {user: self.recommend(user, n) for user, _ in known}
        rows = np.fromiter((row for _, row in known), dtype=np.int64, count=len(known))
        indptr = self.user_items.indptr
        most_played = int((indptr[rows + 1] - indptr[rows]).max())
        k = min(n + most_played, self.index.size)
        scores, ids = self.index.search(users[rows].astype(np.float32), k)
        songs = [str(s) for s in self.item_ids.tolist()]
        lists: dict[str, Scored] = {}
        for position, (user, row) in enumerate(known):
            seen = set(self.user_items.indices[indptr[row] : indptr[row + 1]].tolist())
            pairs = [
                (songs[i], s)
                for s, i in zip(scores[position].tolist(), ids[position].tolist(), strict=True)
                if i >= 0 and i not in seen
            ]
            lists[user] = pairs[:n]
        return lists

    def score_songs(self, user_id: str, song_ids: list[str]) -> list[float | None]:
        """The model's score of each song for the listener (the inner product its FAISS
        index ranks by); None for a song or listener it does not know, or a model without
        vectors."""
        row = self._user_position.get(user_id)
        users, items = self.model.user_factors, self.model.item_factors
        if row is None or users is None or items is None:
            return [None] * len(song_ids)
        positions = [self._item_position.get(song) for song in song_ids]
        known = [i for i, p in enumerate(positions) if p is not None]
        out: list[float | None] = [None] * len(song_ids)
        if known:
            vectors = items[[positions[i] for i in known]]
            for i, score in zip(known, vectors @ users[row], strict=True):
                out[i] = float(score)
        return out

    def similar(self, song_id: str, n: int) -> Scored:
        """Songs most like ``song_id`` (itself left out); empty for a song the model lacks."""
        item = self._item_position.get(song_id)
        if item is None:
            return []
        items = self.model.item_factors
        if self.index is not None and items is not None:
            scores, ids = self.index.search(items[item : item + 1].astype(np.float32), n + 1)
            pairs = zip(scores[0], ids[0], strict=True)
        else:
            ids, scores = self.model.similar_items(item, N=n + 1)
            pairs = zip(scores, ids, strict=True)
        similar = [(str(self.item_ids[i]), float(s)) for s, i in pairs if i >= 0 and i != item]
        return similar[:n]


def quiet_artifact_downloads() -> None:
    """No MLflow download progress bars: a service's and a batch job's logs stay readable."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def load_bundle(client: MlflowClient, name: str, version: str) -> ModelBundle:
    """Download and load one registered version (model, ids, training rows, FAISS index).

    Raises:
        NotFoundError: the version lacks the artifacts a recommender is registered with.
    """
    import mlflow
    import scipy.sparse as sp
    from mlflow.exceptions import MlflowException

    quiet_artifact_downloads()

    from models.base import Recommender
    from models.index import ItemIndex, ItemIndexError

    details = client.get_model_version(name, version)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}",
                dst_path=tmp,
                tracking_uri=client.tracking_uri,
                # models:/ is resolved by the registry, which is otherwise MLflow's default
                # (a sqlite file in the working directory) in a process that set none
                registry_uri=client._registry_uri,
            )
        )

        def one(filename: str) -> Path:
            found = sorted(folder.rglob(filename))
            if not found:
                raise NotFoundError(f"models:/{name}/{version} has no {filename} artifact")
            return found[0]

        model = Recommender.load(one("model.pkl"))
        user_ids = np.load(one("user_ids.npy"), allow_pickle=True)
        item_ids = np.load(one("item_ids.npy"), allow_pickle=True)
        user_items = sp.load_npz(one("user_items.npz")).tocsr()
        index = None
        try:
            index_folder = mlflow.artifacts.download_artifacts(
                run_id=details.run_id,
                artifact_path="faiss",
                dst_path=str(Path(tmp) / "faiss"),
                tracking_uri=client.tracking_uri,
            )
            index = ItemIndex.load(index_folder)
        except (OSError, ItemIndexError, MlflowException):
            log.info("models:/%s/%s has no FAISS index: the model scores directly", name, version)
    return ModelBundle(name, version, details.run_id, model, user_ids, item_ids, user_items, index)


class ModelHolder:
    """The bundle behind ``settings.serving.model_alias``, kept current.

    ``current`` is a plain attribute read: swapping it is one reference assignment (atomic
    under the GIL), so readers never lock and never see a half-loaded model.
    """

    def __init__(
        self, settings: Settings, client: MlflowClient | None = None, alias: str | None = None
    ) -> None:
        from mlflow import MlflowClient

        uri = settings.mlflow.effective_tracking_uri
        self.client = client or MlflowClient(tracking_uri=uri, registry_uri=uri)
        self.name = settings.serving.model_name
        self.alias = alias or settings.serving.model_alias
        self.current: ModelBundle | None = None
        self._loading = threading.Lock()

    def aliased_version(self) -> str | None:
        from models.registry import current_version

        version = current_version(self.client, self.name, self.alias)
        return None if version is None else str(version.version)

    def refresh(self) -> bool:
        """Load the aliased version if it is not the one served; whether it swapped.
        One load at a time; a failing load keeps the current bundle (and is logged)."""
        with self._loading:
            version = self.aliased_version()
            if version is None or (self.current and self.current.version == version):
                return False
            try:
                bundle = load_bundle(self.client, self.name, version)
            except Exception:  # keep serving the bundle we have; the next check retries
                log.exception("could not load %s version %s", self.name, version)
                return False
            self.current = bundle
            log.info("serving %s version %s (%s)", self.name, version, self.alias)
            return True

    def watch(self, interval_s: float, stop: threading.Event) -> threading.Thread:
        """Check the alias every ``interval_s`` seconds in a daemon thread until ``stop``."""

        def loop() -> None:
            while not stop.wait(interval_s):
                try:
                    self.refresh()
                except Exception:  # the registry being down must not end the watch
                    log.exception("registry check failed")

        thread = threading.Thread(target=loop, name="registry-watch", daemon=True)
        thread.start()
        return thread
