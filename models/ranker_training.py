"""Train the second stage on point-in-time data from the lake, compare it with the candidate
model alone, and register it.

Inputs: ``silver.plays`` (the labels, the candidate sources and the candidate model's
training rows), ``dims.songs`` (the catalog, coverage's denominator) and the Feast feature
service ``ranker_v1`` (offline store: the ``features.*`` tables, joined point in time).
Output: a version of ``settings.serving.ranker_name`` in MLflow (alias ``challenger``, and
``champion`` when it is the first or beats the champion on the same evaluation data), with
metrics, dataset lineage, the features it reads, and the LightGBM model as an artifact.
Schedule: on demand (``encore train-ranker``), after ``encore lake build`` and
``encore features apply``.

**Time split.** Requests are made at times ``t`` every ``step``: training requests in
``[split - train_span, split)``, test requests in ``[split, split + test_span)``, each
labelled by the plays of ``[t, t + label_window)`` (a training request's window ends by
``split``). The listeners asked at ``t`` are those who played in that window. Two candidate
models are fitted, each only on plays before its split point: one before the first training
request (it proposes every training request's candidates), one before ``split`` (the test
requests'), so no label reaches the ranker through the candidate model either.

**Candidates offline and online** (:func:`merge_candidates` is the function the service can
call as it is). Per request, as the service does:

=========================  ==========================================  ===========================
source                     offline (here)                              online (the service)
=========================  ==========================================  ===========================
candidate model            a model of the champion's family fitted     the champion's FAISS index
                           before the split point, searched with       (``ModelBundle.recommend``)
                           FAISS the way ``ModelBundle.recommend``
                           searches (training rows left out)
trending in the country    the country's most played songs over the    ``trending:v1:<country>``
                           ``trending_window`` before ``t``            (the ingestion job)
recent artists             top songs (plays over ``artist_top_days``)  the artists of
                           of the artists the listener played in the   ``recent:v1:<user>`` and
                           ``recent_artist_days`` before ``t``         their top songs
exclusions                 songs the listener played in the            the same, from Redis and
                           ``exclude_played_days`` before ``t``        the bundle's training rows
=========================  ==========================================  ===========================

``candidate_score`` is the candidate model's score of the song for the listener (the FAISS
inner product, which for every model with vectors is the model's own score), for every
candidate whatever its source; a song or a listener the model does not know has none
(missing ranks last). The ranker also reads each source's rank (missing when the source did
not propose the song), the Feast features (full names, ``<view>__<feature>``) and a few
derived columns (:func:`with_derived_features`); ``Ranker.feature_columns`` lists exactly
what it reads and the version's ``feature_refs`` tag the Feast features to request online.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import polars as pl
import scipy.sparse as sp

from encore.errors import DatasetError, NotFoundError
from models.ranking import Ranker, evaluate, labelled_impressions, train_ranker

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from encore.settings import Settings
    from models.base import Recommender
    from models.index import ItemIndex
    from models.registry import RegisteredVersion

Report = Callable[[str], None]
Scored = list[tuple[str, float]]

FEAST_SEPARATOR = "__"
"""Feast's full feature names: ``<view>__<feature>`` (``full_feature_names=True``)."""

REQUEST_FEATURES = ("candidate_score", "model_rank", "trending_rank", "artist_rank")
"""What the first stage knows of each candidate (not from Feast): the service computes the
same columns from its own sources (see :class:`Candidate`)."""

DERIVED_FEATURES = ("genre_is_top", "genre_is_second", "hours_since_last_play")
"""Columns :func:`with_derived_features` computes from the Feast features and the request."""

NOT_RANKER_FEATURES = frozenset({f"song_activity{FEAST_SEPARATOR}artist_id"})
"""Feast columns the ranker does not read: an artist id is an identity, not a signal that
generalises (and the artist's own view is joined by it)."""

EXPERIMENT = "encore-ranker"

# the weights of ``training.interactions`` (pipelines/lake/training.py), so the candidate
# model fitted here sees the matrix the champion is trained on
COMPLETED_WEIGHT, PARTIAL_WEIGHT, SKIP_WEIGHT, LIKE_BONUS = 1.0, 0.5, 0.1, 2.0


@dataclass(frozen=True)
class RankerSplit:
    """When the requests are made and how they are labelled (see the module docstring)."""

    split: datetime
    train_span: timedelta = timedelta(days=7)
    test_span: timedelta = timedelta(days=1)
    step: timedelta = timedelta(days=1)
    label_window: timedelta = timedelta(days=1)
    max_queries_per_step: int = 300
    """Listeners asked at one request time, at most (a seeded sample of those who played)."""

    def __post_init__(self) -> None:
        for name in ("train_span", "test_span", "step", "label_window"):
            if getattr(self, name) <= timedelta(0):
                raise DatasetError(f"{name} must be positive, got {getattr(self, name)}")
        if self.split.tzinfo is None:
            raise DatasetError(f"the split time must be timezone-aware, got {self.split}")

    @classmethod
    def spread_over(
        cls, first: datetime, last: datetime, requests_per_side: int = 4, max_queries: int = 300
    ) -> RankerSplit:
        """A split for a lake shorter than the default spans (a demo's few hours): its first
        third trains the candidate model of the training requests, the second holds the
        training requests, the last the test requests; ``requests_per_side`` request times
        each, label windows one step long (whole minutes).

        Raises:
            DatasetError: the lake spans less than 12 minutes of plays.
        """
        start = first.replace(second=0, microsecond=0) + timedelta(minutes=1)
        step_minutes = int((last - start).total_seconds() // 60 // (3 * requests_per_side))
        if step_minutes < 1:
            raise DatasetError(
                f"the plays span {last - first} ({first.isoformat()} to {last.isoformat()}): "
                f"too short for {requests_per_side} requests a side"
            )
        step = timedelta(minutes=step_minutes)
        side = step * requests_per_side
        return cls(start + 2 * side, side, side, step, step, max_queries)

    @property
    def train_start(self) -> datetime:
        return self.split - self.train_span

    def train_times(self) -> list[datetime]:
        """Training request times: their label windows end by the split."""
        return _times(self.train_start, self.split - self.label_window, self.step)

    def test_times(self) -> list[datetime]:
        return _times(self.split, self.split + self.test_span - self.label_window, self.step)


def _times(first: datetime, last: datetime, step: timedelta) -> list[datetime]:
    times = []
    t = first
    while t <= last:
        times.append(t)
        t += step
    return times


@dataclass(frozen=True)
class CandidateConfig:
    """The first stage offline; defaults mirror the service's settings where it has them."""

    model: str = "als"
    model_params: dict[str, Any] = field(
        default_factory=lambda: {"factors": 32, "iterations": 10, "seed": 0}
    )
    limit: int = 200
    """Candidates per request, all sources together (``serving.candidates``)."""
    trending: int = 50
    trending_window: timedelta = timedelta(days=1)
    recent_artist_days: float = 7
    recent_artists: int = 10
    songs_per_artist: int = 5
    artist_top_days: int = 28
    """Window of an artist's top songs (``lake.top_songs_window_days``)."""
    exclude_played_days: float = 7
    """Songs played this recently are not proposed (``serving.exclude_played_days``)."""

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> CandidateConfig:
        family = settings.serving.model_name.removeprefix("encore-")
        values: dict[str, Any] = {
            "model": family,
            "limit": settings.serving.candidates,
            "artist_top_days": settings.lake.top_songs_window_days,
            "exclude_played_days": settings.serving.exclude_played_days,
        }
        return cls(**{**values, **overrides})


# --- the first stage ------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One proposed song and which sources proposed it (rank 1 = the source's best)."""

    song_id: str
    model_rank: int | None = None
    trending_rank: int | None = None
    artist_rank: int | None = None


def merge_candidates(
    model: Sequence[str],
    trending: Sequence[str],
    artist_songs: Sequence[str],
    limit: int,
    exclude: Collection[str] = (),
) -> list[Candidate]:
    """The union of the three sources, excluded songs left out, at most ``limit`` songs.

    Trending and recent-artist songs are kept first (they are few and are why the sources
    exist: songs the candidate model would not surface), the model's list fills the rest in
    its order; each candidate carries its rank in every source that proposed it, whether or
    not that source's copy was the one kept. Offline and online alike.

    Args:
        model: the candidate model's songs, best first.
        trending: the listener's country's most played songs, best first.
        artist_songs: top songs of the listener's recent artists, best first.
    """
    ranks: dict[str, dict[str, int]] = {}
    for source, songs in (("model", model), ("trending", trending), ("artist", artist_songs)):
        for rank, song in enumerate(songs, start=1):
            if song not in exclude:
                ranks.setdefault(song, {}).setdefault(source, rank)
    kept_first = [s for s in dict.fromkeys([*trending, *artist_songs]) if s in ranks]
    chosen = list(dict.fromkeys([*kept_first, *(s for s in model if s in ranks)]))[:limit]
    return [
        Candidate(
            song,
            ranks[song].get("model"),
            ranks[song].get("trending"),
            ranks[song].get("artist"),
        )
        for song in chosen
    ]


def listening(plays: pl.DataFrame) -> pl.DataFrame:
    """Plays that are listening (a like is an action, not a play)."""
    return plays.filter(pl.col("event_type") != "like")


def interaction_weights(plays: pl.DataFrame) -> pl.DataFrame:
    """``user_id, song_id, weight`` as ``training.interactions`` weighs the plays."""
    listened = pl.col("event_type") != "like"
    per_play = (
        pl.when(~listened)
        .then(0.0)
        .when(pl.col("completed"))
        .then(COMPLETED_WEIGHT)
        .when(pl.col("skipped"))
        .then(SKIP_WEIGHT)
        .otherwise(PARTIAL_WEIGHT)
    )
    return (
        plays.group_by("user_id", "song_id")
        .agg(
            per_play.sum().alias("listening"),
            (pl.col("event_type") == "like").any().alias("liked"),
        )
        .select(
            "user_id",
            "song_id",
            (pl.col("listening") + pl.when(pl.col("liked")).then(LIKE_BONUS).otherwise(0.0)).alias(
                "weight"
            ),
        )
        .filter(pl.col("weight") > 0)
    )


class CandidateModel:
    """A recommender fitted on plays before a cut-off, searched as the service searches it."""

    def __init__(
        self,
        model: Recommender,
        user_ids: list[str],
        item_ids: list[str],
        user_items: sp.csr_matrix,
        index: ItemIndex | None,
    ) -> None:
        self.model, self.user_items, self.index = model, user_items, index
        self.item_ids = np.asarray(item_ids, dtype=object)
        self._user = {u: i for i, u in enumerate(user_ids)}
        self._item = {s: i for i, s in enumerate(item_ids)}

    @classmethod
    def fit(
        cls, plays: pl.DataFrame, config: CandidateConfig, settings: Settings
    ) -> CandidateModel:
        """Fit ``config.model`` on ``plays`` (all before the cut-off) and index its vectors."""
        from models import create_recommender
        from models.index import IndexConfig, ItemIndex

        weights = interaction_weights(plays)
        if weights.height == 0:
            raise DatasetError("no plays before the cut-off to fit the candidate model on")
        user_ids = weights["user_id"].unique().sort().to_list()
        item_ids = weights["song_id"].unique().sort().to_list()
        rows = weights["user_id"].replace_strict(user_ids, range(len(user_ids))).to_numpy()
        cols = weights["song_id"].replace_strict(item_ids, range(len(item_ids))).to_numpy()
        matrix = sp.csr_matrix(
            (weights["weight"].to_numpy().astype(np.float32), (rows, cols)),
            shape=(len(user_ids), len(item_ids)),
        )
        model = create_recommender(config.model, **config.model_params).fit(matrix)
        index = None
        if model.item_factors is not None and model.user_factors is not None:
            index = ItemIndex.build(model.item_factors, IndexConfig.from_settings(settings))
        return cls(model, user_ids, item_ids, matrix, index)

    def recommend(self, user_id: str, n: int) -> Scored:
        """As ``serving.bundle.ModelBundle.recommend``: the FAISS search of the listener's
        vector, their training rows left out (the model's own scoring without vectors)."""
        row = self._user.get(user_id)
        if row is None:
            return []
        played = self.user_items[row].indices
        if self.index is not None:
            k = min(n + len(played), self.index.size)
            vector = self.model.user_factors[row : row + 1].astype(np.float32)
            scores, ids = self.index.search(vector, k)
            seen = set(played.tolist())
            pairs = [
                (str(self.item_ids[i]), float(s))
                for s, i in zip(scores[0], ids[0], strict=True)
                if i >= 0 and i not in seen
            ]
            return pairs[:n]
        ids, scores = self.model.recommend(row, self.user_items[row], N=n)
        return [
            (str(self.item_ids[i]), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0
        ]

    def scores(self, user_id: str, song_ids: Sequence[str]) -> list[float | None]:
        """The model's score of each song for the listener; None for what it does not know."""
        row = self._user.get(user_id)
        if row is None:
            return [None] * len(song_ids)
        every = self.model.score(np.asarray([row]), self.user_items[row])[0]
        return [float(every[self._item[s]]) if s in self._item else None for s in song_ids]


def listener_countries(plays: pl.DataFrame) -> pl.DataFrame:
    """``user_id, country_code``: the country a listener plays from most (a profile
    attribute, which the service reads from the account; ties by code)."""
    return (
        plays.group_by("user_id", "country_code")
        .len()
        .sort(["user_id", "len", "country_code"], descending=[False, True, False])
        .unique("user_id", keep="first")
        .select("user_id", "country_code")
    )


def _top(frame: pl.DataFrame, by: list[str], n: int) -> dict[tuple | str, list[str]]:
    """Most played songs per ``by`` group (ties by song id), as lists."""
    counted = (
        frame.group_by(*by, "song_id")
        .len()
        .sort([*by, "len", "song_id"], descending=[*([False] * len(by)), True, False])
        .group_by(by, maintain_order=True)
        .agg(pl.col("song_id").head(n))
    )
    key = by[0] if len(by) == 1 else None
    return {
        (row[key] if key else tuple(row[b] for b in by)): row["song_id"]
        for row in counted.iter_rows(named=True)
    }


def request_candidates(
    plays: pl.DataFrame,
    at: datetime,
    users: Sequence[str],
    model: CandidateModel,
    config: CandidateConfig,
    countries: dict[str, str],
) -> pl.DataFrame:
    """Every listener's candidates at request time ``at``, from what was known before it.

    Returns:
        ``user_id, event_timestamp, song_id, artist_id`` (null when unknown),
        ``candidate_score`` and the sources' ranks (:data:`REQUEST_FEATURES`).
    """
    before = listening(plays.filter(pl.col("start_time") < at))
    trending = _top(
        before.filter(pl.col("start_time") >= at - config.trending_window),
        ["country_code"],
        config.trending,
    )
    artist_top = _top(
        before.filter(pl.col("start_time") >= at - timedelta(days=config.artist_top_days)).filter(
            pl.col("artist_id").is_not_null()
        ),
        ["artist_id"],
        config.songs_per_artist,
    )
    recent = before.filter(
        pl.col("start_time") >= at - timedelta(days=config.recent_artist_days),
        pl.col("user_id").is_in(list(users)),
        pl.col("artist_id").is_not_null(),
    )
    recent_artists = (
        recent.group_by("user_id", "artist_id")
        .len()
        .sort(["user_id", "len", "artist_id"], descending=[False, True, False])
        .group_by("user_id", maintain_order=True)
        .agg(pl.col("artist_id").head(config.recent_artists))
    )
    artists_of = dict(recent_artists.iter_rows())
    excluded_frame = before.filter(
        pl.col("start_time") >= at - timedelta(days=config.exclude_played_days),
        pl.col("user_id").is_in(list(users)),
    )
    excluded = dict(excluded_frame.group_by("user_id").agg(pl.col("song_id").unique()).iter_rows())
    rows: list[tuple] = []
    for user in users:
        model_list = [song for song, _ in model.recommend(user, config.limit)]
        artist_songs = [s for a in artists_of.get(user, []) for s in artist_top.get(a, [])]
        chosen = merge_candidates(
            model_list,
            trending.get(countries.get(user, ""), []),
            artist_songs,
            config.limit,
            exclude=set(excluded.get(user, [])),
        )
        scores = model.scores(user, [c.song_id for c in chosen])
        rows.extend(
            (user, c.song_id, s, c.model_rank, c.trending_rank, c.artist_rank)
            for c, s in zip(chosen, scores, strict=True)
        )
    frame = pl.DataFrame(
        rows,
        schema={
            "user_id": pl.Utf8,
            "song_id": pl.Utf8,
            "candidate_score": pl.Float64,
            "model_rank": pl.Int64,
            "trending_rank": pl.Int64,
            "artist_rank": pl.Int64,
        },
        orient="row",
    )
    song_artist = plays.select("song_id", "artist_id").drop_nulls().unique("song_id")
    return frame.join(song_artist, on="song_id", how="left").with_columns(
        pl.lit(at).cast(pl.Datetime("us", "UTC")).alias("event_timestamp")
    )


def asked_listeners(
    plays: pl.DataFrame, at: datetime, split: RankerSplit, seed: int = 0
) -> list[str]:
    """The listeners who played in ``at``'s label window: a seeded sample of at most
    ``split.max_queries_per_step``."""
    active = (
        listening(plays)
        .filter(pl.col("start_time") >= at, pl.col("start_time") < at + split.label_window)
        .select("user_id")
        .unique()
        .sort("user_id")
    )
    if active.height > split.max_queries_per_step:
        active = active.sample(split.max_queries_per_step, seed=seed).sort("user_id")
    return active["user_id"].to_list()


# --- point-in-time features -----------------------------------------------------------------


def point_in_time_features(settings: Settings, impressions: pl.DataFrame) -> pl.DataFrame:
    """``impressions`` with the ``ranker_v1`` features as they were known at each row's
    ``event_timestamp`` (Feast's point-in-time join over the offline store), full names.

    Raises:
        NotFoundError: the feature service is not registered (``encore features apply``).
    """
    from feast.errors import FeastObjectNotFoundException

    from features.definitions import RANKER_SERVICE
    from features.store import feature_store

    store = feature_store(settings)
    try:
        service = store.get_feature_service(RANKER_SERVICE)
    except FeastObjectNotFoundException as error:
        raise NotFoundError(
            f"feature service {RANKER_SERVICE} is not registered in {settings.features_repo} "
            "(run `encore features apply`)"
        ) from error
    keyed = impressions.with_row_index("_row")
    entities = keyed.select(
        "_row",
        "user_id",
        "song_id",
        pl.col("artist_id").fill_null(""),
        pl.col("event_timestamp").cast(pl.Datetime("us", "UTC")),
    ).to_pandas()
    joined = store.get_historical_features(
        entity_df=entities, features=service, full_feature_names=True
    ).to_df()
    features = pl.from_pandas(joined).drop("user_id", "song_id", "artist_id", "event_timestamp")
    timestamps = [c for c, t in features.schema.items() if isinstance(t, pl.Datetime)]
    features = features.with_columns(pl.col(timestamps).cast(pl.Datetime("us", "UTC")))
    return keyed.join(features, on="_row", how="left").sort("_row").drop("_row")


def feature_refs(feature_columns: Sequence[str]) -> list[str]:
    """Feast references (``view:feature``) of the full-named Feast columns among
    ``feature_columns``, plus those :func:`with_derived_features` reads."""
    sources = [
        f"listener_activity{FEAST_SEPARATOR}top_genre_28d",
        f"listener_activity{FEAST_SEPARATOR}second_genre_28d",
        f"listener_activity{FEAST_SEPARATOR}last_played_at",
        f"song_activity{FEAST_SEPARATOR}genre",
    ]
    named = [c for c in dict.fromkeys([*feature_columns, *sources]) if FEAST_SEPARATOR in c]
    return [c.replace(FEAST_SEPARATOR, ":", 1) for c in named]


def with_derived_features(frame: pl.DataFrame) -> pl.DataFrame:
    """Add :data:`DERIVED_FEATURES` (the service calls this on its online frame too):
    whether the song's genre is the listener's top or second genre (28 days), and the hours
    from the listener's last play known to the features to the request."""
    sep = FEAST_SEPARATOR
    genre = pl.col(f"song_activity{sep}genre")
    return frame.with_columns(
        (genre == pl.col(f"listener_activity{sep}top_genre_28d"))
        .cast(pl.Int8)
        .alias("genre_is_top"),
        (genre == pl.col(f"listener_activity{sep}second_genre_28d"))
        .cast(pl.Int8)
        .alias("genre_is_second"),
        (
            (
                pl.col("event_timestamp").cast(pl.Datetime("us", "UTC"))
                - pl.col(f"listener_activity{sep}last_played_at").cast(pl.Datetime("us", "UTC"))
            ).dt.total_seconds()
            / 3600.0
        ).alias("hours_since_last_play"),
    )


def ranker_feature_columns(frame: pl.DataFrame) -> list[str]:
    """What the ranker reads from a ranking frame: request, Feast (less identities and
    timestamps) and derived columns."""
    feast = [
        c
        for c, dtype in frame.schema.items()
        if FEAST_SEPARATOR in c
        and c not in NOT_RANKER_FEATURES
        and not isinstance(dtype, pl.Datetime)
    ]
    return [*REQUEST_FEATURES, *feast, *DERIVED_FEATURES]


# --- the data set ---------------------------------------------------------------------------


@dataclass
class RankingData:
    train: pl.DataFrame
    test: pl.DataFrame
    catalog_size: int
    lineage: dict[str, Any]


def read_plays(settings: Settings) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The columns of ``silver.plays`` the ranker needs (catalog songs only), and lineage."""
    from encore.delta import open_delta, read_lake_table
    from encore.tables import SILVER_PLAYS

    table = open_delta(settings, SILVER_PLAYS)
    if table is None:
        raise DatasetError(
            f"lake table {SILVER_PLAYS.qualified_name} expected at "
            f"{SILVER_PLAYS.path(settings)}; not found (run `encore lake build`)"
        )
    columns = [
        "user_id",
        "song_id",
        "artist_id",
        "start_time",
        "event_type",
        "country_code",
        "completed",
        "skipped",
        "song_known",
    ]
    plays = (
        pl.from_arrow(read_lake_table(settings, SILVER_PLAYS, columns=columns))
        .filter(pl.col("song_known"))
        .drop("song_known")
        .with_columns(pl.col("start_time").cast(pl.Datetime("us", "UTC")))
    )
    lineage = {
        "name": "lake",
        "source": "lake",
        "table": SILVER_PLAYS.qualified_name,
        "path": SILVER_PLAYS.path(settings),
        "delta_version": int(table.version()),
    }
    return plays, lineage


def catalog_size(settings: Settings, plays: pl.DataFrame) -> int:
    """Songs in ``dims.songs`` (coverage's denominator); the played songs without it."""
    from encore.delta import open_delta, read_lake_table
    from encore.tables import DIM_SONGS

    played = plays["song_id"].n_unique()
    if open_delta(settings, DIM_SONGS) is None:
        return played
    songs = read_lake_table(settings, DIM_SONGS, columns=["song_id"]).num_rows
    return max(songs, played)


def build_ranking_data(
    settings: Settings,
    split: RankerSplit,
    config: CandidateConfig,
    plays: pl.DataFrame | None = None,
    seed: int = 0,
    report: Report = lambda _: None,
) -> RankingData:
    """Labelled impressions with point-in-time features, training and test requests apart."""
    lineage: dict[str, Any] = {}
    if plays is None:
        plays, lineage = read_plays(settings)
    countries = dict(listener_countries(plays).iter_rows())
    sides = {}
    for side, times, cutoff in (
        ("train", split.train_times(), split.train_start),
        ("test", split.test_times(), split.split),
    ):
        if not times:
            raise DatasetError(
                f"no {side} request time: the {side} span is shorter than the label window "
                f"{split.label_window}"
            )
        before = plays.filter(pl.col("start_time") < cutoff)
        report(
            f"{side}: fitting the candidate model ({config.model}) on {before.height} plays "
            f"before {cutoff.isoformat()}"
        )
        model = CandidateModel.fit(before, config, settings)
        parts = []
        for number, at in enumerate(times):
            users = asked_listeners(plays, at, split, seed + number)
            if users:
                parts.append(request_candidates(plays, at, users, model, config, countries))
        if not parts:
            raise DatasetError(f"no listener played in any {side} label window")
        candidates = pl.concat(parts)
        impressions = labelled_impressions(plays, candidates, split.label_window)
        report(
            f"{side}: {impressions['query_id'].n_unique()} requests at {len(times)} times, "
            f"{impressions.height} candidates; joining features point in time"
        )
        sides[side] = with_derived_features(point_in_time_features(settings, impressions))
    lineage.update(
        {
            "split": split.split.isoformat(),
            "train_start": split.train_start.isoformat(),
            "test_end": (split.split + split.test_span).isoformat(),
            "step_s": split.step.total_seconds(),
            "label_window_s": split.label_window.total_seconds(),
            "feature_tables": _feature_table_versions(settings),
        }
    )
    return RankingData(sides["train"], sides["test"], catalog_size(settings, plays), lineage)


def _feature_table_versions(settings: Settings) -> dict[str, int | None]:
    from encore.delta import open_delta
    from features.store import feature_tables

    versions = {}
    for table in feature_tables():
        delta = open_delta(settings, table)
        versions[table.qualified_name] = None if delta is None else int(delta.version())
    return versions


def default_split(plays: pl.DataFrame, test_span: timedelta) -> datetime:
    """The last ``test_span`` of silver, cut at a whole hour."""
    last = plays["start_time"].max()
    if last is None:
        raise DatasetError("silver.plays holds no plays")
    split = last - test_span
    return split.replace(minute=0, second=0, microsecond=0)


# --- train, evaluate, register --------------------------------------------------------------


@dataclass
class RankerTrainingResult:
    ranker: Ranker
    metrics: dict[str, dict[str, float]]
    """``candidates`` (the candidate model's order) and ``ranker``, on the test requests."""
    sizes: dict[str, int]
    registered: RegisteredVersion | None = None

    def summary(self) -> dict[str, Any]:
        """What ``encore train-ranker`` and the demo print: metrics, sizes, registration."""
        return {
            "metrics": {
                ordering: {k: round(v, 4) for k, v in values.items()}
                for ordering, values in self.metrics.items()
            },
            "sizes": self.sizes,
            "registered": asdict(self.registered) if self.registered else None,
        }

    def table(self) -> str:
        """The evaluation as a Markdown table: candidates alone against the ranker."""
        names = [m for m in self.metrics["ranker"] if m != "queries"]
        lines = ["| ordering | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for label, key in (("candidate model alone", "candidates"), ("ranker", "ranker")):
            values = " | ".join(f"{self.metrics[key][m]:.4f}" for m in names)
            lines.append(f"| {label} | {values} |")
        return "\n".join(lines)


def evaluation_fingerprint(frame: pl.DataFrame) -> str:
    """sha256 of the test requests and their labels: identifies the evaluation data."""
    rows = frame.select("query_id", "song_id", "label").sort("query_id", "song_id")
    return hashlib.sha256(rows.write_csv().encode()).hexdigest()


def train_ranker_on_lake(
    settings: Settings,
    split_at: datetime | None = None,
    train_span: timedelta = timedelta(days=7),
    test_span: timedelta = timedelta(days=1),
    step: timedelta = timedelta(days=1),
    label_window: timedelta = timedelta(days=1),
    max_queries_per_step: int = 300,
    fit_to_lake: bool = False,
    fit_young_lake: bool = False,
    config: CandidateConfig | None = None,
    params: dict[str, Any] | None = None,
    register: bool = True,
    seed: int = 0,
    report: Report = lambda _: None,
    skip_identical: bool = False,
) -> RankerTrainingResult | None:
    """Build the point-in-time ranking data, train the ranker, evaluate both orderings on
    the test requests, and (``register``) log and register it.

    Args:
        split_at: the split time (see :class:`RankerSplit` for the spans); default: the
            last ``test_span`` of silver, from a whole hour.
        fit_to_lake: ignore the split and the spans and spread the requests over the plays
            silver holds (:meth:`RankerSplit.spread_over`), for a lake of a few hours.
        fit_young_lake: do that only when silver's first play is after the split's first
            training request (a young lake: the scheduled run's choice), and say so.
        config: the first stage; default from the settings (:meth:`CandidateConfig.from_settings`).
        params: LightGBM parameters over :data:`models.ranking.DEFAULT_PARAMS`.
        skip_identical: with ``register``, fit nothing when a version was trained on the
            same ranking data (train and test frames' content), parameters, seed and code
            (its ``training_key`` tag): it is reported, aliased challenger again, and None
            is returned.

    Raises:
        ServiceError: ``register`` and the tracking server is unreachable (asked first).
        DatasetError: too little data for the split.
    """
    from models.tracking import require

    if register:
        require(settings.mlflow.effective_tracking_uri)
    config = config or CandidateConfig.from_settings(settings)
    plays, lineage = read_plays(settings)
    if fit_to_lake:
        times = plays["start_time"]
        if times.is_empty():
            raise DatasetError("silver.plays holds no plays of catalog songs")
        split = RankerSplit.spread_over(times.min(), times.max(), max_queries=max_queries_per_step)
    else:
        split = RankerSplit(
            split_at or default_split(plays, test_span),
            train_span,
            test_span,
            step,
            label_window,
            max_queries_per_step,
        )
        first = plays["start_time"].min() if plays.height else None
        if fit_young_lake and first is not None and first > split.train_start:
            report(
                f"silver's first play ({first.isoformat()}) is after the first training "
                f"request ({split.train_start.isoformat()}): a young lake, so the requests "
                "are spread over the plays it holds (as --fit-to-lake)"
            )
            split = RankerSplit.spread_over(
                first, plays["start_time"].max(), max_queries=max_queries_per_step
            )
    report(
        f"silver.plays: {plays.height} rows; train requests from {split.train_start.isoformat()}"
        f", split {split.split.isoformat()}, test to {(split.split + split.test_span).isoformat()}"
    )
    data = build_ranking_data(settings, split, config, plays, seed, report)
    data.lineage = {**lineage, **data.lineage}
    key = ""
    if register:
        key = ranking_training_key(data, params, seed)
        if skip_identical and _reuse_version(settings, key, report):
            return None
    columns = ranker_feature_columns(data.train)
    report(f"training LambdaRank on {data.train.height} rows, {len(columns)} features")
    started = time.perf_counter()
    ranker = train_ranker(data.train, columns, params, seed=seed)
    fit_seconds = time.perf_counter() - started
    reranked = ranker.rerank(data.test)
    metrics = {
        "candidates": evaluate(data.test, "candidate_score", catalog_size=data.catalog_size),
        "ranker": evaluate(reranked, "ranker_score", catalog_size=data.catalog_size),
    }
    sizes = {
        "train_queries": data.train["query_id"].n_unique(),
        "train_rows": data.train.height,
        "test_queries": data.test["query_id"].n_unique(),
        "test_rows": data.test.height,
        "catalog_songs": data.catalog_size,
        "plays": plays.height,
    }
    result = RankerTrainingResult(ranker, metrics, sizes)
    report("test: " + ", ".join(f"{k} {v:.4f}" for k, v in _flat(metrics).items()))
    if register:
        result.registered = register_ranker(
            settings,
            ranker,
            params={
                "split": split.split.isoformat(),
                "train_span_s": split.train_span.total_seconds(),
                "test_span_s": split.test_span.total_seconds(),
                "step_s": split.step.total_seconds(),
                "label_window_s": split.label_window.total_seconds(),
                "max_queries_per_step": split.max_queries_per_step,
                "seed": seed,
                "candidates": json.dumps(asdict(config), default=str),
                **(params or {}),
            },
            metrics={**_flat(metrics), **sizes, "fit_seconds": fit_seconds},
            lineage=data.lineage,
            fingerprint=evaluation_fingerprint(data.test),
            evaluation=data.test,
            catalog=data.catalog_size,
            training_key=key,
        )
        reg = result.registered
        report(
            f"registered {reg.name} v{reg.version} (challenger); "
            f"{'champion' if reg.promoted else 'not promoted'}: {reg.reason}"
        )
    return result


def ranking_training_key(data: RankingData, params: dict[str, Any] | None, seed: int) -> str:
    """sha256 of what decides a ranker: its train and test frames' content, parameters,
    seed and the code's commit (equal keys, identical training)."""
    from models.registry import git_commit

    digest = hashlib.sha256()
    for frame in (data.train, data.test):
        rows = frame.sort("query_id", "song_id").hash_rows(seed=0)
        digest.update(rows.to_numpy().tobytes())
    described = {"params": params or {}, "seed": seed, "commit": git_commit()}
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _reuse_version(settings: Settings, key: str, report: Report) -> bool:
    """Whether a ranker version was trained with ``key``; if so it is the challenger again."""
    from models.registry import CHALLENGER, find_version, registry_client
    from models.tracking import server_errors

    uri, name = settings.mlflow.effective_tracking_uri, settings.serving.ranker_name
    with server_errors(uri):
        client = registry_client(uri)
        found = find_version(client, name, "training_key", key)
        if found is None:
            return False
        client.set_registered_model_alias(name, CHALLENGER, str(found.version))
    report(
        f"{name} v{found.version} was trained on identical ranking data (training key "
        f"{key[:12]}): nothing to train; it is the challenger"
    )
    return True


def _flat(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """Ranker metrics under their own names (``ndcg@10``), the baseline's prefixed."""
    flat = {k: v for k, v in metrics["ranker"].items() if k != "queries"}
    flat.update({f"candidates_{k}": v for k, v in metrics["candidates"].items() if k != "queries"})
    return flat


class RankerPyfunc(mlflow.pyfunc.PythonModel):
    """Scores candidate rows: input a frame with ``Ranker.feature_columns``; output one
    score per row (higher is better)."""

    def load_context(self, context: Any) -> None:
        self.ranker = Ranker.load(context.artifacts["ranker"])

    # no type hints: MLflow would read them as the input schema and warn about a DataFrame
    def predict(self, context, model_input, params=None):
        return self.ranker.score(pl.from_pandas(model_input))


def register_ranker(
    settings: Settings,
    ranker: Ranker,
    params: dict[str, Any],
    metrics: dict[str, float],
    lineage: dict[str, Any],
    fingerprint: str,
    evaluation: pl.DataFrame | None = None,
    catalog: int | None = None,
    training_key: str = "",
) -> RegisteredVersion:
    """Log one ranker run, register it as ``settings.serving.ranker_name``, alias it
    challenger, and champion under the registry's rule (first version, or beats the champion
    on the registry metric on the same evaluation data; a champion scored on other data is
    re-scored on ``evaluation`` when it can read its columns).

    Raises:
        ServiceError: the tracking server is unreachable, before or during the run.
    """
    from features.definitions import RANKER_SERVICE
    from models.registry import (
        CHALLENGER,
        RegisteredVersion,
        decide_promotion,
        git_commit,
        lineage_tags,
        registry_client,
    )
    from models.tracking import server_errors

    uri = settings.mlflow.effective_tracking_uri
    name = settings.serving.ranker_name
    metric = settings.models.registry_metric
    with server_errors(uri):
        client = registry_client(uri)
        mlflow.set_experiment(EXPERIMENT)
        commit = git_commit()
        tags = {
            "git_commit": commit,
            "model_family": "lightgbm-lambdarank",
            "dataset": lineage.get("name", ""),
            "dataset_source": lineage.get("source", ""),
            "evaluation_fingerprint": fingerprint,
            "feature_service": RANKER_SERVICE,
            "feature_refs": json.dumps(feature_refs(ranker.feature_columns)),
            **lineage_tags(lineage),
        }
        with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
            mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
            mlflow.log_metrics({_metric_key(k): float(v) for k, v in metrics.items()})
            mlflow.set_tags(tags)
            mlflow.log_dict(lineage, "lineage.json")
            folder = ranker.save(Path(tmp) / "ranker")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=RankerPyfunc(),
                artifacts={"ranker": str(folder)},
                code_paths=[str(Path(__file__).parent)],
                pip_requirements=_pip_requirements(),
                registered_model_name=name,
                await_registration_for=60,
            )
            run_id = run.info.run_id
        version = str(info.registered_model_version)
        for key, value in {
            _metric_key(metric): metrics[metric],
            "metric_name": metric,
            "run_id": run_id,
            **{k: tags[k] for k in ("evaluation_fingerprint", "git_commit", "feature_service")},
            "feature_refs": tags["feature_refs"],
            "training_key": training_key,
        }.items():
            client.set_model_version_tag(name, version, key, str(value))
        client.set_registered_model_alias(name, CHALLENGER, version)
        decided = decide_promotion(
            client, name, version, _ranker_rescore(client, name, evaluation, catalog)
        )
        return RegisteredVersion(
            name, version, run_id, decided.promoted, decided.reason, decided.decision
        )


def _ranker_rescore(
    client: MlflowClient, name: str, evaluation: pl.DataFrame | None, catalog: int | None
):
    """A :data:`models.registry.Rescore` for rankers: the champion reranks the
    challenger's evaluation frame when it holds every feature column the champion reads."""
    metric_rows = evaluation

    def rescore(champion: Any) -> float | None:
        if metric_rows is None:
            return None
        old = _load_version(client, name, str(champion.version))
        if any(c not in metric_rows.columns for c in old.feature_columns):
            return None
        metric = champion.tags.get("metric_name", "ndcg@10")
        return evaluate(old.rerank(metric_rows), "ranker_score", catalog_size=catalog)[metric]

    return rescore


def _load_version(client: MlflowClient, name: str, version: str) -> Ranker:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}",
                dst_path=tmp,
                tracking_uri=client.tracking_uri,
            )
        )
        found = sorted(folder.rglob("ranker.json"))
        if not found:
            raise NotFoundError(f"models:/{name}/{version} has no ranker artifact")
        return Ranker.load(found[0].parent)


def load_ranker(settings: Settings, alias: str = "champion") -> Ranker | None:
    """The ranker behind ``models:/<serving.ranker_name>@<alias>``; None when no version
    holds the alias (the service then keeps the candidate order).

    Raises:
        ServiceError: the tracking server is unreachable.
    """
    loaded = load_ranker_version(settings, alias)
    return None if loaded is None else loaded[1]


def load_ranker_version(
    settings: Settings, alias: str = "champion", unless: str | None = None
) -> tuple[str, Ranker] | None:
    """The version number behind the alias and its ranker; None when no version holds the
    alias, or when it is ``unless`` (the version already served: nothing is downloaded).

    Raises:
        ServiceError: the tracking server is unreachable.
    """
    from models.registry import current_version, registry_client
    from models.tracking import server_errors

    uri = settings.mlflow.effective_tracking_uri
    name = settings.serving.ranker_name
    with server_errors(uri):
        client = registry_client(uri)
        version = current_version(client, name, alias)
        if version is None or str(version.version) == unless:
            return None
        return str(version.version), _load_version(client, name, str(version.version))


def _metric_key(key: str) -> str:
    return key.replace("@", "_at_")


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    names = ("numpy", "scipy", "pandas", "polars", "lightgbm", "mlflow")
    return [f"{name}=={version(name)}" for name in names]


def utc(value: datetime) -> datetime:
    """``value`` as UTC (a naive time is taken to be UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
