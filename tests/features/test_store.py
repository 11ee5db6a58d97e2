"""The feature store against the real parts: Feast's DuckDB offline store reading Delta
tables written with delta-rs (through DuckDB's delta extension from its PyPI package: this
machine cannot download one), and the platform's Redis as the online store."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from encore.errors import NotFoundError
from encore.settings import Settings
from encore.tables import ARTIST_POPULARITY, LISTENER_ACTIVITY, SONG_ACTIVITY, Table
from features import store
from features.definitions import RANKER_SERVICE
from pipelines.lake import privacy

DAY1, DAY2 = date(2026, 11, 20), date(2026, 11, 21)


def known_at(day: date) -> datetime:
    """When a day's snapshot becomes known: the next 00:00 UTC."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def listener(day: date, user_id: str, plays_7d: int, top_genre: str) -> dict:
    return {
        "feature_date": day,
        "event_timestamp": known_at(day),
        "user_id": user_id,
        "plays_7d": plays_7d,
        "plays_28d": plays_7d + 10,
        "skip_rate_28d": 0.25,
        "distinct_artists_28d": 3,
        "top_genre_28d": top_genre,
        "active_hours_28d": 4,
        "last_played_at": known_at(day) - timedelta(hours=2),
    }


def song(day: date, song_id: str, plays_7d: int) -> dict:
    return {
        "feature_date": day,
        "event_timestamp": known_at(day),
        "song_id": song_id,
        "artist_id": "ar-1",
        "genre": "rock",
        "plays_1d": 1,
        "plays_7d": plays_7d,
        "listeners_7d": 1,
        "age_days": 100,
    }


def artist(day: date, plays_28d: int) -> dict:
    return {
        "feature_date": day,
        "event_timestamp": known_at(day),
        "artist_id": "ar-1",
        "plays_7d": plays_28d,
        "plays_28d": plays_28d,
        "listeners_28d": 2,
        "popularity_rank_28d": 1,
    }


def write(settings: Settings, table: Table, rows: list[dict], day: date | None = None) -> None:
    """Append ``rows``, or with ``day`` overwrite that day's partition (as a job's rerun
    does: the old file stays on disk, only the log drops it)."""
    schema = table.arrow_schema()
    data = pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema)
    write_deltalake(
        table.path(settings),
        data,
        mode="overwrite" if day else "append",
        predicate=f"feature_date = '{day}'" if day else None,
        partition_by=["feature_date"],
    )


@pytest.fixture()
def settings(platform: Settings, tmp_path: Path) -> Settings:
    """The platform's Redis, a private lake and feature repo, and a project of the test's own
    (Feast's Redis keys are namespaced by project)."""
    return platform.model_copy(
        update={
            "lake": platform.lake.model_copy(update={"root": str(tmp_path / "lake")}),
            "features": platform.features.model_copy(
                update={"repo": str(tmp_path / "features"), "project": f"t{uuid.uuid4().hex[:8]}"}
            ),
        }
    )


def write_two_days(settings: Settings) -> None:
    write(settings, LISTENER_ACTIVITY, [listener(DAY1, "u1", 5, "rock")])
    write(settings, LISTENER_ACTIVITY, [listener(DAY2, "u1", 9, "jazz")])
    write(settings, SONG_ACTIVITY, [song(DAY1, "s1", 3), song(DAY2, "s1", 7)])
    write(settings, ARTIST_POPULARITY, [artist(DAY1, 30), artist(DAY2, 40)])


def test_the_online_store_url_is_told_to_feast_in_its_own_form() -> None:
    assert store.redis_connection_string("redis://localhost:16379/0") == "localhost:16379,db=0"
    assert (
        store.redis_connection_string("rediss://:p%40ss@cache.internal:6380/2")
        == "cache.internal:6380,db=2,password=p@ss,ssl=true"
    )


@pytest.mark.integration
def test_a_training_row_gets_only_what_was_known_before_it(settings: Settings) -> None:
    write_two_days(settings)
    store.apply(settings)
    requests = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u1"],
            "event_timestamp": [
                known_at(DAY1) - timedelta(seconds=1),  # before anything was known
                known_at(DAY1) + timedelta(hours=12),  # day 1's snapshot, not day 2's
                known_at(DAY2) - timedelta(seconds=1),  # still day 1's
                known_at(DAY2) + timedelta(hours=1),  # day 2's
            ],
        }
    )

    frame = (
        store.feature_store(settings)
        .get_historical_features(
            entity_df=requests,
            features=["listener_activity:plays_7d", "listener_activity:top_genre_28d"],
        )
        .to_df()
        .sort_values("event_timestamp")
    )

    plays = [None if pd.isna(v) else int(v) for v in frame["plays_7d"]]
    assert plays == [None, 5, 5, 9]
    assert list(frame["top_genre_28d"])[1:] == ["rock", "rock", "jazz"]


@pytest.mark.integration
def test_offline_reads_follow_the_delta_log_not_the_files_on_disk(settings: Settings) -> None:
    write_two_days(settings)
    # day 2 rebuilt with other values: the first file of day 2 stays on disk, out of the log
    write(settings, LISTENER_ACTIVITY, [listener(DAY2, "u1", 11, "blues")], day=DAY2)
    day2_files = list((Path(LISTENER_ACTIVITY.path(settings)) / f"feature_date={DAY2}").iterdir())
    assert len(day2_files) == 2
    store.apply(settings)
    requests = pd.DataFrame({"user_id": ["u1"], "event_timestamp": [known_at(DAY2)]})

    frame = (
        store.feature_store(settings)
        .get_historical_features(entity_df=requests, features=["listener_activity:plays_7d"])
        .to_df()
    )

    assert frame["plays_7d"].tolist() == [11]


def online(settings: Settings, user_id: str) -> dict[str, list]:
    feast = store.feature_store(settings)
    return feast.get_online_features(
        features=feast.get_feature_service(RANKER_SERVICE),
        entity_rows=[{"user_id": user_id, "song_id": "s1", "artist_id": "ar-1"}],
        full_feature_names=True,
    ).to_dict()


@pytest.mark.integration
@pytest.mark.parametrize("online_store", ["redis", "sqlite"])
def test_materialized_values_are_served_until_the_listener_is_forgotten(
    settings: Settings, online_store: str
) -> None:
    settings = settings.model_copy(
        update={"features": settings.features.model_copy(update={"online_store": online_store})}
    )
    write_two_days(settings)
    store.apply(settings)
    store.apply(settings)  # applying twice changes nothing

    store.materialize(settings, end=known_at(DAY2) + timedelta(hours=1))

    served = online(settings, "u1")
    assert served["listener_activity__plays_7d"] == [9]
    assert served["listener_activity__top_genre_28d"] == ["jazz"]
    assert served["song_activity__plays_7d"] == [7]
    assert served["artist_popularity__plays_28d"] == [40]
    assert online(settings, "nobody")["listener_activity__plays_7d"] == [None]

    erasure = privacy.forget(settings, "u1")  # the lake and the online store alike

    assert erasure.online_features_deleted > 0
    assert privacy.ONLINE_FEATURES in erasure.tables_touched
    assert LISTENER_ACTIVITY.qualified_name in erasure.tables_touched
    after = online(settings, "u1")
    assert after["listener_activity__plays_7d"] == [None]
    assert after["song_activity__plays_7d"] == [7]  # songs are nobody's data
    assert store.forget_listener(settings, "u1") == 0


@pytest.mark.integration
def test_materializing_before_the_lake_built_the_tables_names_them(settings: Settings) -> None:
    write(settings, LISTENER_ACTIVITY, [listener(DAY1, "u1", 5, "rock")])

    with pytest.raises(NotFoundError, match=r"features\.song_activity.*encore lake build"):
        store.materialize(settings, end=known_at(DAY1))


@pytest.mark.integration
def test_the_demo_step_loads_the_newest_day_and_shows_a_listener(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from features.demo import run_demo_step

    write_two_days(settings)

    run_demo_step(settings)

    shown = capsys.readouterr().err
    assert "most active listener (u1)" in shown
    assert "plays_7d" in shown and "jazz" in shown  # day 2's values, not day 1's
    assert "rock" not in shown
    assert (settings.home / "logs" / "features.log").exists()
