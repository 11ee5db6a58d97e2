"""Second stage of recommendation: a learned ranker (LightGBM LambdaRank) over candidates.

The first stage (the champion model's FAISS index, trending songs in the listener's country,
the listener's recent artists) proposes candidates with a ``candidate_score``; this module
learns to re-order them from features, and evaluates either ordering offline. It works on
plain polars frames, so it is testable without Feast: the feature store only adds columns.

**RankingExample frame** (one row per candidate shown to one listener at one request time):

- ``query_id`` (str): one listener at one request time, ``"{user_id}@{event_timestamp}"``;
  LightGBM's groups, and the unit the metrics average over.
- ``user_id`` (str), ``song_id`` (str): the listener and the candidate song.
- ``event_timestamp`` (datetime, UTC): the request time; features must be known before it
  (Feast's point-in-time join uses this column).
- ``label`` (int): relevance from what the listener did in the window after the request:
  2 completed play, 1 partial play (played, neither completed nor skipped), 0 skipped or
  not played. Several plays of one song in the window: the best label wins.
- ``candidate_score`` (float): the candidate model's score; ``candidate_rank`` (int, 1 =
  best): its rank within the query (ties broken by ``song_id``).
- feature columns: numeric, or categorical (polars ``Categorical``/``Enum``/strings), which
  the ranker encodes with a category list fixed at training time (unseen values: missing).

Negatives are the candidates the listener did not play in the window (label 0), plus the
candidates they played and skipped. Songs played in the window that no candidate source
proposed are not rows (the ranker can only re-order); :func:`labelled_impressions` counts
them in an optional column ``window_positives`` (distinct songs with a label > 0 play in the
window, proposed or not), which :func:`evaluate` uses as recall's denominator when present,
so recall also charges the candidate sources for what they missed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import scipy.sparse as sp

from encore.errors import DatasetError
from models.evaluation import ranking_metrics

LABEL_COMPLETED = 2
LABEL_PARTIAL = 1
LABEL_NEGATIVE = 0

KEY_COLUMNS = ("query_id", "user_id", "song_id", "event_timestamp")
RANKING_COLUMNS = (*KEY_COLUMNS, "label", "candidate_score", "candidate_rank")

DEFAULT_PARAMS: dict[str, object] = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 5,
}

_MODEL_FILE = "ranker.txt"
_META_FILE = "ranker.json"


def _require(frame: pl.DataFrame, columns: tuple[str, ...] | list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DatasetError(f"{what} lacks columns {missing}; it has {frame.columns}")


def _with_rank(frame: pl.DataFrame, score: str, rank: str) -> pl.DataFrame:
    # Rank 1 = highest score, a missing score last; ties broken by song_id so the rank is
    # reproducible.
    ordered = frame.sort(
        ["query_id", score, "song_id"], descending=[False, True, False], nulls_last=True
    )
    return ordered.with_columns(
        pl.int_range(1, pl.len() + 1).over("query_id").cast(pl.Int64).alias(rank)
    )


def labelled_impressions(
    plays: pl.DataFrame,
    candidates: pl.DataFrame,
    window: timedelta = timedelta(days=1),
) -> pl.DataFrame:
    """Label each request's candidates by what the listener played in the following window.

    Args:
        plays: silver.plays-like rows: ``user_id, song_id, start_time, completed, skipped,
            event_type``. Likes are actions, not listening, and are ignored.
        candidates: one row per proposed song: ``user_id, event_timestamp`` (request
            time), ``song_id``, ``candidate_score``, plus any feature columns (kept).
        window: a play counts for a request when ``event_timestamp <= start_time <
            event_timestamp + window``; later plays are not positives (no leakage from
            beyond the window), earlier ones are history, not labels.

    Returns:
        A RankingExample frame (see the module docstring), sorted by query and
        ``candidate_rank``; candidates never played in the window get label 0.
    """
    _require(
        plays, ("user_id", "song_id", "start_time", "completed", "skipped", "event_type"), "plays"
    )
    _require(candidates, ("user_id", "song_id", "event_timestamp", "candidate_score"), "candidates")
    if window <= timedelta(0):
        raise DatasetError(f"the label window must be positive, got {window}")
    if candidates.select(
        pl.struct("user_id", "event_timestamp", "song_id").is_duplicated().any()
    ).item():
        raise DatasetError("candidates hold a song twice for one request; merge the sources first")

    play_labels = plays.filter(pl.col("event_type") != "like").select(
        "user_id",
        "song_id",
        "start_time",
        pl.when(pl.col("completed"))
        .then(LABEL_COMPLETED)
        .when(~pl.col("skipped"))
        .then(LABEL_PARTIAL)
        .otherwise(LABEL_NEGATIVE)
        .cast(pl.Int64)
        .alias("play_label"),
    )
    in_window = (pl.col("start_time") >= pl.col("event_timestamp")) & (
        pl.col("start_time") < pl.col("event_timestamp") + window
    )
    requests = candidates.select("user_id", "song_id", "event_timestamp")
    best = (
        requests.join(play_labels, on=["user_id", "song_id"], how="inner")
        .filter(in_window)
        .group_by("user_id", "song_id", "event_timestamp")
        .agg(pl.col("play_label").max().alias("label"))
    )
    request_times = candidates.select("user_id", "event_timestamp").unique()
    positives = (
        request_times.join(play_labels.filter(pl.col("play_label") > 0), on="user_id")
        .filter(in_window)
        .group_by("user_id", "event_timestamp")
        .agg(pl.col("song_id").n_unique().cast(pl.Int64).alias("window_positives"))
    )
    frame = (
        candidates.drop("window_positives", strict=False)
        .join(best, on=["user_id", "song_id", "event_timestamp"], how="left")
        .join(positives, on=["user_id", "event_timestamp"], how="left")
        .with_columns(
            pl.col("label").fill_null(LABEL_NEGATIVE).cast(pl.Int64),
            pl.col("window_positives").fill_null(0),
            pl.col("candidate_score").cast(pl.Float64),
            pl.format("{}@{}", "user_id", pl.col("event_timestamp").dt.to_string("iso")).alias(
                "query_id"
            ),
        )
        .drop("candidate_rank", strict=False)
    )
    frame = _with_rank(frame, "candidate_score", "candidate_rank")
    rest = [c for c in frame.columns if c not in (*RANKING_COLUMNS, "window_positives")]
    return frame.select(*RANKING_COLUMNS, "window_positives", *rest)


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype in (pl.Utf8, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical)


@dataclass
class Ranker:
    """A trained LambdaRank booster and the feature columns (and category lists) it reads."""

    booster: lgb.Booster
    feature_columns: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)

    def _matrix(self, frame: pl.DataFrame) -> np.ndarray:
        return feature_matrix(frame, self.feature_columns, self.categories)

    def score(self, frame: pl.DataFrame) -> np.ndarray:
        """The ranker's score of every row of ``frame`` (row order kept; higher is better)."""
        _require(frame, self.feature_columns, "the frame to score")
        return self.booster.predict(self._matrix(frame), num_threads=1)

    def rerank(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with ``ranker_score`` and ``ranker_rank`` (1 = best), sorted per query."""
        scored = frame.with_columns(pl.Series("ranker_score", self.score(frame)))
        return _with_rank(scored, "ranker_score", "ranker_rank")

    def save(self, directory: str | Path) -> Path:
        """Write LightGBM's text model and the feature list (JSON) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / _MODEL_FILE))
        meta = {"feature_columns": self.feature_columns, "categories": self.categories}
        (directory / _META_FILE).write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Ranker:
        """Read a ranker written by :meth:`save`."""
        directory = Path(directory)
        for name in (_MODEL_FILE, _META_FILE):
            if not (directory / name).is_file():
                raise DatasetError(f"ranker directory {directory} lacks {name}")
        meta = json.loads((directory / _META_FILE).read_text())
        booster = lgb.Booster(model_file=str(directory / _MODEL_FILE))
        return cls(booster, list(meta["feature_columns"]), dict(meta.get("categories", {})))


def feature_matrix(
    frame: pl.DataFrame, feature_columns: list[str], categories: dict[str, list[str]]
) -> np.ndarray:
    """Float matrix of ``feature_columns``; categorical columns as codes into ``categories``.

    Nulls and unseen categories become NaN, which LightGBM treats as missing.
    """
    columns = []
    for name in feature_columns:
        if name in categories:
            known = categories[name]
            codes = (
                frame[name]
                .cast(pl.Utf8)
                .replace_strict(
                    known, list(range(len(known))), default=None, return_dtype=pl.Float64
                )
            )
            columns.append(codes.fill_null(np.nan).to_numpy())
        else:
            columns.append(frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy())
    return np.column_stack(columns) if columns else np.empty((frame.height, 0))


def train_ranker(
    frame: pl.DataFrame,
    feature_columns: list[str],
    params: dict[str, object] | None = None,
    num_threads: int = 1,
    seed: int = 0,
) -> Ranker:
    """Fit a LightGBM ``LGBMRanker`` (lambdarank, groups by ``query_id``) on a RankingExample frame.

    Deterministic for a given frame, params, ``num_threads`` and ``seed``
    (``deterministic=True``, row order fixed by sorting on query and song).
    """
    _require(frame, ("query_id", "song_id", "label", *feature_columns), "the training frame")
    if not feature_columns:
        raise DatasetError("train_ranker needs at least one feature column")
    frame = frame.sort("query_id", "song_id")
    categories = {
        name: sorted(frame[name].cast(pl.Utf8).drop_nulls().unique().to_list())
        for name in feature_columns
        if _is_categorical(frame[name].dtype)
    }
    features = feature_matrix(frame, feature_columns, categories)
    groups = frame.group_by("query_id", maintain_order=True).len()["len"].to_numpy()
    settings = {
        **DEFAULT_PARAMS,
        **(params or {}),
        "objective": "lambdarank",
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": num_threads,
        "random_state": seed,
        "verbose": -1,
    }
    model = lgb.LGBMRanker(**settings)
    categorical = [i for i, name in enumerate(feature_columns) if name in categories]
    model.fit(
        features,
        frame["label"].to_numpy(),
        group=groups,
        feature_name=feature_columns,
        categorical_feature=categorical or "auto",
    )
    return Ranker(model.booster_, list(feature_columns), categories)


def evaluate(
    frame: pl.DataFrame,
    order_by: str,
    k: int = 10,
    recall_k: int = 50,
    catalog_size: int | None = None,
) -> dict[str, float]:
    """NDCG@k, recall@recall_k and coverage@k of ordering each query by ``order_by`` (descending).

    Relevance is binary here (``label > 0``), as in :func:`models.evaluation.ranking_metrics`,
    which computes the metrics; queries without a positive are not averaged, but their top
    ``k`` still count for coverage. Ties in ``order_by`` are broken by ``song_id``. With a
    ``window_positives`` column, recall's denominator is the query's positives in the window
    (proposed or not) and a query with positives only outside the candidates counts with
    recall 0; NDCG stays within the candidates.

    Args:
        frame: a RankingExample frame with the ``order_by`` column.
        order_by: the score column, e.g. ``candidate_score`` or ``ranker_score``.
        catalog_size: songs in the catalog (coverage's denominator); default the distinct
            songs of ``frame``.
    """
    _require(frame, ("query_id", "song_id", "label", order_by), "the frame to evaluate")
    songs = frame["song_id"].unique().sort()
    catalog_size = catalog_size if catalog_size is not None else len(songs)
    if catalog_size < len(songs):
        raise DatasetError(
            f"catalog_size {catalog_size} is smaller than the {len(songs)} songs in the frame"
        )
    ordered = _with_rank(
        frame.select(
            *dict.fromkeys(("query_id", "song_id", "label", order_by)),
            *(["window_positives"] if "window_positives" in frame.columns else []),
        ),
        order_by,
        "_rank",
    ).with_columns(
        pl.col("query_id").rank("dense").cast(pl.Int64).sub(1).alias("_query"),
        pl.col("song_id")
        .replace_strict(songs, pl.int_range(len(songs), eager=True))
        .alias("_song"),
    )
    n_queries = ordered["_query"].max() + 1 if ordered.height else 0
    positives = ordered.filter(pl.col("label") > 0)
    relevant = sp.csr_matrix(
        (
            np.ones(positives.height, dtype=np.float32),
            (positives["_query"].to_numpy(), positives["_song"].to_numpy()),
        ),
        shape=(n_queries, catalog_size),
    )
    recall_relevant = relevant
    if "window_positives" in frame.columns:
        # Positives no candidate source proposed: relevant items past the catalog's last
        # column, which no ordering can recommend.
        missed = ordered.group_by("_query").agg(
            (pl.col("window_positives").max() - (pl.col("label") > 0).sum()).alias("missed")
        )
        if missed["missed"].min() < 0:
            raise DatasetError(
                "window_positives is smaller than the positives among the candidates"
            )
        rows = np.repeat(missed["_query"].to_numpy(), missed["missed"].to_numpy())
        extra = np.concatenate(
            [np.arange(m, dtype=np.int64) for m in missed["missed"].to_numpy()]
            + [np.zeros(0, dtype=np.int64)]
        )
        width = catalog_size + int(missed["missed"].max() or 0)
        recall_relevant = sp.csr_matrix(
            (
                np.ones(positives.height + len(rows), dtype=np.float32),
                (
                    np.concatenate([positives["_query"].to_numpy(), rows]),
                    np.concatenate([positives["_song"].to_numpy(), catalog_size + extra]),
                ),
            ),
            shape=(n_queries, width),
        )
    depth = max(k, recall_k)
    recommended = np.full((n_queries, depth), -1, dtype=np.int64)
    top = ordered.filter(pl.col("_rank") <= depth)
    recommended[top["_query"].to_numpy(), top["_rank"].to_numpy() - 1] = top["_song"].to_numpy()
    queries = np.arange(n_queries)
    at_k = ranking_metrics(recommended, relevant, queries, k)
    at_recall_k = ranking_metrics(recommended, recall_relevant, queries, recall_k)
    return {
        f"ndcg@{k}": float(at_k[f"ndcg@{k}"]),
        f"recall@{recall_k}": float(at_recall_k[f"recall@{recall_k}"]),
        f"coverage@{k}": float(at_k[f"coverage@{k}"]),
        "queries": at_k["users"],
    }
