"""The second stage as the service runs it: the registered ranker over online features.

The ranker was trained on Feast's historical features (full names, ``view__feature``) plus
the candidate columns; here the same names are read from the online store for the pool's
listener, songs and artists. Song and artist features change once a day, so they are kept
in a small cache (``SONG_FEATURES_TTL_S``) and only the listener's row is read per request;
a read over ``serving.feature_budget_ms`` skips the ranker for that request (the caller
flags ``features``) rather than making the listener wait.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from encore.settings import Settings

if TYPE_CHECKING:
    from models.ranking import Ranker
    from serving.bundle import ModelBundle
    from serving.catalog import Catalog
    from serving.recommend import Candidate
    from serving.signals import OnlineFeatures

log = logging.getLogger(__name__)

SONG_FEATURES_TTL_S = 6 * 3600.0
"""Song and artist features are daily snapshots: the cache is rebuilt in the background well
within a day, and a song missing from it is read online (within the budget)."""
WARM_CHUNK = 500


SOURCE_RANK_COLUMNS = {"model": "model_rank", "trending": "trending_rank", "artists": "artist_rank"}
"""The service's candidate sources the ranker was trained with, and their rank columns."""


@dataclass(frozen=True)
class ServedRanker:
    version: str
    ranker: Ranker
    refs: dict[str, list[str]]
    """Feast refs (``view:feature``) it needs, by entity join key (user_id, song_id...)."""

    @cached_property
    def codes(self) -> dict[str, dict[str, int]]:
        """Category value -> code, per categorical column (as the ranker was trained)."""
        return {
            name: {value: code for code, value in enumerate(values)}
            for name, values in self.ranker.categories.items()
        }


def _float(value: Any) -> float:
    return np.nan if value is None else float(value)


def _floats(values: list[Any]) -> np.ndarray | list[float]:
    """A column as floats: numpy's C conversion when nothing is missing, else per value."""
    if None not in values:
        try:
            return np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    return [_float(v) for v in values]


def _same(a: Any, b: Any) -> float:
    """1/0 when both are known, missing otherwise (polars' null equality, as trained)."""
    return np.nan if a is None or b is None else float(a == b)


def ranker_matrix(
    served: ServedRanker,
    columns: dict[str, list[Any]],
    listener: dict[str, Any],
    rows: int,
    now: datetime,
) -> np.ndarray:
    """The ranker's input for ``rows`` candidates: per-candidate ``columns``, the listener's
    features (one value for every row) and the derived columns, computed as
    ``models.ranker_training.with_derived_features`` computes them for training (a test
    holds the two equal), in plain numpy: a polars frame per request costs more than the
    model's prediction."""
    sep = "__"
    genres = columns.get(f"song_activity{sep}genre", [None] * rows)
    top = listener.get(f"listener_activity{sep}top_genre_28d")
    second = listener.get(f"listener_activity{sep}second_genre_28d")
    last = listener.get(f"listener_activity{sep}last_played_at")
    hours = None
    if last is not None:
        last = last if last.tzinfo is not None else last.replace(tzinfo=UTC)
        hours = (now - last).total_seconds() / 3600.0
    derived = {
        "genre_is_top": [_same(g, top) for g in genres],
        "genre_is_second": [_same(g, second) for g in genres],
        "hours_since_last_play": [_float(hours)] * rows,
    }
    matrix = np.full((rows, len(served.ranker.feature_columns)), np.nan)
    codes = served.codes
    for j, name in enumerate(served.ranker.feature_columns):
        if name in derived:
            values = derived[name]
        elif name in columns:
            values = columns[name]
        elif name in listener:  # one value for every row
            value = listener[name]
            if name in codes:
                matrix[:, j] = np.nan if value is None else codes[name].get(str(value), np.nan)
            else:
                matrix[:, j] = _float(value)
            continue
        else:
            continue  # unknown here: missing, as LightGBM was told at training
        if name in codes:
            known = codes[name]
            matrix[:, j] = [np.nan if v is None else known.get(str(v), np.nan) for v in values]
        else:
            matrix[:, j] = _floats(values)
    return matrix


class RankerHolder:
    """The ranker behind ``serving.model_alias``; swapped whole, like the candidate model."""

    def __init__(self, settings: Settings, catalog: Any, features: OnlineFeatures) -> None:
        from features.definitions import ENTITIES

        self.settings = settings
        self.catalog = catalog
        self.features = features
        self._warmed_at: float | None = None
        self.current: ServedRanker | None = None
        self._loading = threading.Lock()
        self._item_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        # view name -> its entity's join key (user_id, song_id, artist_id)
        self.entity_view = {table.name: key for key, table in ENTITIES.values()}

    def refresh(self) -> bool:
        with self._loading:
            try:
                loaded = self._aliased()
            except Exception:  # keep what we serve; the next check retries
                log.exception("could not load the ranker")
                return False
            if loaded is None:
                self._warm_if_stale()
                return False
            version, ranker = loaded
            from models.ranker_training import feature_refs

            refs: dict[str, list[str]] = {}
            for ref in feature_refs(ranker.feature_columns):
                key = self.entity_view.get(ref.split(":", 1)[0])
                if key is not None:
                    refs.setdefault(key, []).append(ref)
            self._item_cache.clear()
            self._warmed_at = None
            self.current = ServedRanker(version, ranker, refs)
            self._warm_if_stale()
            log.info("ranker version %s serving", version)
            return True

    def _warm_if_stale(self) -> None:
        """Read every catalog song's features (and one listener row) off the request path.

        A cold Feast read (connections, registry) takes tens of milliseconds, over the
        budget; after this, a request reads only its listener's row.
        """
        served = self.current
        fresh = self._warmed_at is not None and (
            time.monotonic() - self._warmed_at < SONG_FEATURES_TTL_S / 2
        )
        if served is None or fresh or self.features.store is None:
            return
        catalog: Catalog = self.catalog.current
        item_keys = [k for k in served.refs if k != "user_id"]
        started = time.monotonic()
        try:
            if served.refs.get("user_id"):
                self.features.read_now(served.refs["user_id"], [{"user_id": "warm-up"}])
            songs = list(catalog.songs)
            for i in range(0, len(songs) if item_keys else 0, WARM_CHUNK):
                self._fill(songs[i : i + WARM_CHUNK], catalog, served, item_keys, None)
        except Exception:  # the request path reads what is missing, within budget
            log.exception("warming the feature cache failed")
            return
        self._warmed_at = time.monotonic()
        log.info(
            "feature cache: %d songs in %.1f s", len(self._item_cache), self._warmed_at - started
        )

    def _aliased(self) -> tuple[str, Ranker] | None:
        """The aliased version and its ranker, None when none or already served."""
        from models.ranker_training import load_ranker_version

        served = self.current.version if self.current is not None else None
        return load_ranker_version(self.settings, self.settings.serving.model_alias, unless=served)

    def score(
        self,
        user_id: str,
        pool: list[Candidate],
        features: OnlineFeatures,
        bundle: ModelBundle | None,
    ) -> dict[str, float] | None:
        """Ranker scores for the pool, or None when there is no ranker or features are late."""
        served = self.current
        if served is None or not pool:
            return None
        catalog: Catalog = self.catalog.current
        songs = [c.song_id for c in pool]
        columns: dict[str, list[Any]] = {
            "candidate_score": (
                bundle.score_songs(user_id, songs) if bundle is not None else [None] * len(songs)
            ),
            **{
                column: [c.ranks.get(source) for c in pool]
                for source, column in SOURCE_RANK_COLUMNS.items()
            },
        }
        listener: dict[str, Any] = {}
        if served.refs.get("user_id"):
            read = features.read_entity(served.refs["user_id"], "user_id", user_id)
            if read is None:
                return None
            listener = read
        item_keys = [k for k in served.refs if k != "user_id"]
        if item_keys:
            rows = self._item_features(songs, catalog, served, item_keys, features)
            if rows is None:
                return None
            for name in rows[0]:
                columns[name] = [r.get(name) for r in rows]
        matrix = ranker_matrix(served, columns, listener, len(songs), datetime.now(UTC))
        scores = served.ranker.booster.predict(matrix, num_threads=1)
        return {song: float(score) for song, score in zip(songs, scores, strict=True)}

    def _item_features(
        self,
        songs: list[str],
        catalog: Catalog,
        served: ServedRanker,
        item_keys: list[str],
        features: OnlineFeatures,
    ) -> list[dict[str, Any]] | None:
        """Song and artist features, from the cache or one budgeted read for the missing."""
        now = time.monotonic()
        missing = [s for s in songs if s not in self._item_cache or self._item_cache[s][0] < now]
        if missing and not self._fill(missing, catalog, served, item_keys, features):
            return None
        return [self._item_cache[s][1] for s in songs]

    def _fill(
        self,
        songs: list[str],
        catalog: Catalog,
        served: ServedRanker,
        item_keys: list[str],
        budgeted: OnlineFeatures | None,
    ) -> bool:
        """Read ``songs``' features into the cache (within budget unless ``budgeted`` is None)."""
        rows = [
            {"song_id": song, "artist_id": catalog.songs[song].artist_id}
            if song in catalog.songs
            else {"song_id": song, "artist_id": ""}
            for song in songs
        ]
        refs = [ref for key in item_keys for ref in served.refs[key]]
        rows = [{key: row[key] for key in item_keys if key in row} for row in rows]
        read = (
            budgeted.read(refs, rows)
            if budgeted is not None
            else self.features.read_now(refs, rows)
        )
        if read is None:
            return False
        names = [n for n in read if n not in item_keys]
        expires = time.monotonic() + SONG_FEATURES_TTL_S
        for i, song in enumerate(songs):
            self._item_cache[song] = (expires, {name: read[name][i] for name in names})
        return True
