"""The ranker trained on the lake: offline candidates, point-in-time features, registration.

A small synthetic lake (silver.plays and the three feature tables written with delta-rs, as
their jobs would have), Feast's real offline store over it, and the platform's MLflow.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from mlflow import MlflowClient

from encore.errors import DatasetError
from encore.settings import Settings, get_settings, settings_env
from encore.tables import ARTIST_POPULARITY, LISTENER_ACTIVITY, SILVER_PLAYS, SONG_ACTIVITY
from features import store
from models.ranker_training import (
    CandidateConfig,
    CandidateModel,
    RankerSplit,
    build_ranking_data,
    interaction_weights,
    load_ranker,
    load_ranker_version,
    merge_candidates,
    register_ranker,
    train_ranker_on_lake,
)
from tests.pipelines.lake.conftest import write_rows

FIRST_DAY = date(2026, 11, 1)
DAYS = 6
GENRES = ("rock", "jazz", "pop")
SPLIT = datetime(2026, 11, 5, tzinfo=UTC)  # train requests on days 3-4, test on day 5


def midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


# --- the first stage, without services ----------------------------------------------------


def test_merge_keeps_the_small_sources_first_and_every_rank_of_a_song() -> None:
    merged = merge_candidates(
        model=["m1", "t1", "m2", "played", "m3"],
        trending=["t1", "t2", "played"],
        artist_songs=["a1", "t2"],
        limit=6,
        exclude={"played"},
    )

    assert [c.song_id for c in merged] == ["t1", "t2", "a1", "m1", "m2", "m3"]
    by_song = {c.song_id: c for c in merged}
    assert (by_song["t1"].model_rank, by_song["t1"].trending_rank) == (2, 1)
    assert (by_song["t2"].trending_rank, by_song["t2"].artist_rank) == (2, 2)
    assert by_song["m3"].model_rank == 5 and by_song["m3"].trending_rank is None
    assert [c.song_id for c in merge_candidates(["m1"], ["t1", "t2"], ["a1"], limit=2)] == [
        "t1",
        "t2",
    ]


def test_a_short_lake_gets_its_requests_spread_over_its_plays() -> None:
    first = datetime(2026, 12, 1, 9, 0, 30, tzinfo=UTC)
    last = first + timedelta(hours=1)

    split = RankerSplit.spread_over(first, last, requests_per_side=4)

    train, test = split.train_times(), split.test_times()
    assert len(train) == len(test) == 4
    # from the next whole minute, 09:01, to 10:00:30: 59.5 minutes / 12, whole minutes
    assert split.step == split.label_window == timedelta(minutes=4)
    assert first < split.train_start  # plays before it train the candidate model
    assert train[-1] + split.label_window <= split.split == test[0]
    assert test[-1] + split.label_window <= last
    with pytest.raises(DatasetError, match="too short"):
        RankerSplit.spread_over(first, first + timedelta(minutes=11))


def _plays(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    """(user, song, event_type) rows as silver.plays' weighting columns."""
    return pl.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "song_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "completed": [r[2] == "complete" for r in rows],
            "skipped": [r[2] == "skip" for r in rows],
        }
    )


def test_the_candidate_model_sees_the_weights_of_training_interactions() -> None:
    plays = _plays(
        [
            ("u1", "s1", "complete"),
            ("u1", "s1", "skip"),
            ("u1", "s1", "like"),
            ("u1", "s2", "play"),
            ("u2", "s2", "like"),
        ]
    )

    weights = {(u, s): w for u, s, w in interaction_weights(plays).iter_rows()}

    assert weights == {
        ("u1", "s1"): pytest.approx(1.0 + 0.1 + 2.0),
        ("u1", "s2"): pytest.approx(0.5),
        ("u2", "s2"): pytest.approx(2.0),
    }


def test_the_candidate_model_leaves_out_what_the_listener_played() -> None:
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"s{s}", "complete") for u in range(20) for s in rng.choice(30, 6, replace=False)
    ]
    config = CandidateConfig(model_params={"factors": 8, "iterations": 5, "seed": 0})
    model = CandidateModel.fit(_plays(rows), config, Settings())

    proposed = model.recommend("u3", 10)

    played = {s for u, s, _ in rows if u == "u3"}
    assert len(proposed) == 10 and not played & {s for s, _ in proposed}
    scores = model.scores("u3", [s for s, _ in proposed])
    assert scores == pytest.approx([score for _, score in proposed], rel=1e-4)
    assert [s for _, s in proposed] == sorted((s for _, s in proposed), reverse=True)
    assert model.recommend("stranger", 10) == [] and model.scores("stranger", ["s1"]) == [None]


# --- the lake ------------------------------------------------------------------------------


def synthetic_plays() -> pl.DataFrame:
    """Eight listeners, each fond of one genre's songs, playing every day from two countries."""
    rng = np.random.default_rng(11)
    rows = []
    for u in range(8):
        genre = GENRES[u % len(GENRES)]
        songs = [f"{genre}-{a}-{s}" for a in range(2) for s in range(4)]
        for d in range(DAYS):
            for n in range(8):
                song = songs[rng.integers(len(songs))] if rng.random() < 0.8 else None
                if song is None:
                    other = GENRES[rng.integers(len(GENRES))]
                    song = f"{other}-{rng.integers(2)}-{rng.integers(4)}"
                start = midnight(FIRST_DAY + timedelta(days=d)) + timedelta(
                    hours=1 + 2 * n, minutes=int(rng.integers(60))
                )
                kind = rng.choice(["complete", "skip", "play"], p=[0.6, 0.25, 0.15])
                rows.append(
                    {
                        "event_id": f"e{u}-{d}-{n}",
                        "user_id": f"u{u}",
                        "song_id": song,
                        "artist_id": song.rsplit("-", 1)[0],
                        "genre": song.split("-")[0],
                        "start_time": start,
                        "event_type": str(kind),
                        "country_code": "GB" if u % 2 else "FR",
                        "completed": kind == "complete",
                        "skipped": kind == "skip",
                    }
                )
    return pl.DataFrame(rows).with_columns(pl.col("start_time").cast(pl.Datetime("us", "UTC")))


def write_lake(settings: Settings, plays: pl.DataFrame) -> None:
    silver = [
        {
            **row,
            "end_time": row["start_time"] + timedelta(minutes=3),
            "ms_played": 180_000,
            "device_type": "mobile",
            "event_date": row["start_time"].date(),
            "ingested_at": row["start_time"],
            "duration_ms": 180_000,
            "song_known": True,
            "user_known": True,
            "local_hour": row["start_time"].hour,
        }
        for row in plays.iter_rows(named=True)
    ]
    write_rows(settings, SILVER_PLAYS, silver)
    listeners, songs, artists = [], [], []
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        known = midnight(day + timedelta(days=1))
        upto = plays.filter(pl.col("start_time") < known)
        on_day = upto.filter(pl.col("start_time") >= midnight(day))
        for (user,), own in upto.group_by("user_id"):
            listeners.append(
                {
                    "feature_date": day,
                    "event_timestamp": known,
                    "user_id": user,
                    "plays_7d": own.height,
                    "plays_28d": own.height,
                    "skip_rate_28d": own["skipped"].mean(),
                    "distinct_artists_28d": own["artist_id"].n_unique(),
                    "top_genre_28d": own["genre"].mode().sort()[0],
                    "active_hours_28d": 1,
                    "last_played_at": own["start_time"].max(),
                }
            )
        for genre in GENRES:
            for a in range(2):
                artist = f"{genre}-{a}"
                artists.append(
                    {
                        "feature_date": day,
                        "event_timestamp": known,
                        "artist_id": artist,
                        "plays_7d": upto.filter(pl.col("artist_id") == artist).height,
                        "plays_28d": upto.filter(pl.col("artist_id") == artist).height,
                        "listeners_28d": 1,
                        "popularity_rank_28d": 1,
                    }
                )
                for s in range(4):
                    song = f"{artist}-{s}"
                    songs.append(
                        {
                            "feature_date": day,
                            "event_timestamp": known,
                            "song_id": song,
                            "artist_id": artist,
                            "genre": genre,
                            "plays_1d": on_day.filter(pl.col("song_id") == song).height,
                            "plays_7d": upto.filter(pl.col("song_id") == song).height,
                            "listeners_7d": 1,
                            "age_days": 100,
                        }
                    )
    write_rows(settings, LISTENER_ACTIVITY, listeners)
    write_rows(settings, SONG_ACTIVITY, songs)
    write_rows(settings, ARTIST_POPULARITY, artists)


@pytest.fixture(scope="module")
def lake(platform: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A private lake and feature repo with the synthetic plays and their feature
    snapshots (one per day, known at the next midnight, the last one after every request),
    the definitions applied, and a registered model name of the module's own."""
    root: Path = tmp_path_factory.mktemp("ranker")
    settings = platform.model_copy(
        update={
            "lake": platform.lake.model_copy(update={"root": str(root / "lake")}),
            "features": platform.features.model_copy(
                update={"repo": str(root / "features"), "project": f"t{uuid.uuid4().hex[:8]}"}
            ),
            "serving": platform.serving.model_copy(
                update={"ranker_name": f"test-ranker-{uuid.uuid4().hex[:8]}"}
            ),
        }
    )
    write_lake(settings, synthetic_plays())
    store.apply(settings)
    return settings


SMALL = CandidateConfig(
    model_params={"factors": 8, "iterations": 5, "seed": 0},
    limit=20,
    trending=5,
    recent_artists=3,
    songs_per_artist=3,
    exclude_played_days=0.25,
)


@pytest.mark.integration
def test_no_feature_value_written_after_a_request_is_joined_to_it(lake: Settings) -> None:
    split = RankerSplit(SPLIT, train_span=timedelta(days=2), max_queries_per_step=5)
    plays = synthetic_plays()

    data = build_ranking_data(lake, split, SMALL, plays=plays)

    frame = pl.concat([data.train, data.test], how="diagonal_relaxed")
    assert data.train["event_timestamp"].max() < SPLIT <= data.test["event_timestamp"].min()
    # what each listener's and song's latest snapshot known at the request holds: plays
    # before the request's midnight; a snapshot from the request's own day would show
    # plays after it
    last_play = (
        frame.select("user_id", "event_timestamp")
        .unique()
        .join(plays.select("user_id", "start_time"), on="user_id")
        .filter(pl.col("start_time") < pl.col("event_timestamp"))
        .group_by("user_id", "event_timestamp")
        .agg(pl.col("start_time").max().alias("expected_last_play"))
    )
    day_before = (
        frame.select("song_id", "event_timestamp")
        .unique()
        .join(plays.select("song_id", "start_time"), on="song_id", how="left")
        .group_by("song_id", "event_timestamp")
        .agg(
            (
                (pl.col("start_time") < pl.col("event_timestamp"))
                & (pl.col("start_time") >= pl.col("event_timestamp") - timedelta(days=1))
            )
            .sum()
            .alias("expected_plays_1d")
        )
    )
    checked = frame.join(last_play, on=["user_id", "event_timestamp"]).join(
        day_before, on=["song_id", "event_timestamp"]
    )
    assert checked.height == frame.height > 0
    assert (checked["listener_activity__last_played_at"] < checked["event_timestamp"]).all()
    assert checked["listener_activity__last_played_at"].to_list() == (
        checked["expected_last_play"].to_list()
    )
    assert checked["song_activity__plays_1d"].to_list() == (
        checked["expected_plays_1d"].cast(pl.Int64).to_list()
    )
    # the labels come from the window after the request only
    window_end = frame["event_timestamp"] + split.label_window
    positives = frame.filter(pl.col("label") > 0)
    played_in_window = (
        positives.join(plays, on=["user_id", "song_id"])
        .filter(
            pl.col("start_time") >= pl.col("event_timestamp"),
            pl.col("start_time") < pl.col("event_timestamp") + split.label_window,
        )
        .select("query_id", "song_id")
        .unique()
    )
    assert played_in_window.height == positives.height > 0
    assert window_end.max() <= SPLIT + split.test_span


@pytest.mark.integration
def test_the_ranker_is_trained_registered_and_loaded_back(lake: Settings) -> None:
    result = train_ranker_on_lake(
        lake,
        SPLIT,
        train_span=timedelta(days=2),
        test_span=timedelta(days=1),
        max_queries_per_step=8,
        config=SMALL,
        params={"n_estimators": 20},
    )

    registered = result.registered
    assert registered is not None and registered.promoted
    client = MlflowClient(tracking_uri=lake.mlflow.effective_tracking_uri)
    name = lake.serving.ranker_name
    version = client.get_model_version_by_alias(name, "champion")
    assert version.version == registered.version
    run = client.get_run(registered.run_id)
    for ordering, prefix in (("ranker", ""), ("candidates", "candidates_")):
        for metric in ("ndcg@10", "recall@50", "coverage@10"):
            key = prefix + metric.replace("@", "_at_")
            assert run.data.metrics[key] == pytest.approx(result.metrics[ordering][metric])
    assert run.data.metrics["test_queries"] == result.sizes["test_queries"] > 0
    assert run.data.tags["lake.table"] == "silver.plays"
    assert run.data.tags["feature_service"] == "ranker_v1"
    assert "listener_activity:plays_7d" in version.tags["feature_refs"]

    loaded = load_ranker(lake)

    assert loaded is not None and loaded.feature_columns == result.ranker.feature_columns
    rows = pl.DataFrame(
        {c: [None, 1.0] for c in loaded.feature_columns if c not in loaded.categories}
        | {c: [None, (loaded.categories[c] or [None])[0]] for c in loaded.categories}
    )
    assert loaded.score(rows).tolist() == pytest.approx(result.ranker.score(rows).tolist())
    assert load_ranker(lake, alias="no-such-alias") is None
    served = load_ranker_version(lake)
    assert served is not None and served[0] == registered.version
    assert load_ranker_version(lake, unless=registered.version) is None

    # the same evaluation data and no better: registered, not promoted
    again = register_ranker(
        lake,
        result.ranker,
        params={},
        metrics={"ndcg@10": result.metrics["ranker"]["ndcg@10"]},
        lineage={},
        fingerprint=version.tags["evaluation_fingerprint"],
    )
    assert not again.promoted and "does not beat" in again.reason
    assert client.get_model_version_by_alias(name, "challenger").version == again.version


@pytest.mark.integration
def test_the_command_prints_both_orderings(lake: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """``encore train-ranker`` as an operator runs it, settings from the environment."""
    from typer.testing import CliRunner

    from encore.cli import app

    for name, value in settings_env(lake).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app,
            [
                "train-ranker",
                "--split",
                SPLIT.date().isoformat(),
                "--days",
                "2",
                "--max-queries",
                "4",
                "--no-register",
            ],
            env={"COLUMNS": "200"},
        )
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    table = [line for line in result.output.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in table] == [
        "| ordering",
        "| candidate model alone",
        "| ranker",
    ]
    assert '"registered": null' in result.output
