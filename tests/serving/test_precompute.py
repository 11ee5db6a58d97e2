"""Precomputed lists: the active listeners of a small silver lake get the registered
version's lists in the real Redis, as the service's own bundle would answer them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import redis
import typer
from mlflow import MlflowClient
from typer.testing import CliRunner

from encore.errors import NotFoundError
from encore.keys import RECS_PREFIX, read_recs, recs_key
from encore.settings import Settings, get_settings
from encore.tables import SILVER_PLAYS
from models.interactions import InteractionDataset
from models.synthetic import generate
from models.training import train
from serving.experiments import assign_variant
from serving.precompute import (
    active_listeners,
    load_serving_bundle,
    precompute_lists,
    register_recs_commands,
)
from tests.pipelines.lake.conftest import write_rows

ALS = {"factors": 8, "iterations": 5, "weighting": "log"}
TOP_N, TTL_S, ACTIVE_DAYS = 10, 900, 7
NEWEST = date(2025, 3, 20)  # long ago: "today" is the lake's newest day, not the clock's
STRANGER = "listener-the-model-never-saw"


def play(user_id: str, day: date, n: int) -> dict:
    start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12, minutes=n)
    return {
        "event_id": str(uuid.uuid4()),
        "user_id": user_id,
        "song_id": f"song-{n}",
        "start_time": start,
        "end_time": start + timedelta(minutes=3),
        "ms_played": 180_000,
        "event_type": "complete",
        "device_type": "mobile",
        "country_code": "DE",
        "event_date": day,
        "ingested_at": start,
        "song_known": True,
        "user_known": True,
        "completed": True,
        "skipped": False,
        "local_hour": 13,
    }


@pytest.fixture(scope="module")
def data() -> InteractionDataset:
    return generate(users=60, items=150, genres=6, tags=30, seed=5)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    """Lake, model name and list sizes of the test's own; no services (see ``served``)."""
    return Settings(
        home=tmp_path,
        lake={"root": str(tmp_path / "lake")},
        serving={
            "model_name": f"test-recs-{uuid.uuid4().hex[:8]}",
            "recs_top_n": TOP_N,
            "recs_ttl_s": TTL_S,
            "recs_active_days": ACTIVE_DAYS,
        },
    )


@pytest.fixture()
def served(platform: Settings, settings: Settings) -> Settings:
    """``settings`` on the running platform (Redis, MLflow)."""
    return platform.model_copy(update={"lake": settings.lake, "serving": settings.serving})


def write_silver(settings: Settings, data: InteractionDataset) -> tuple[set[str], set[str]]:
    """Plays on the last day of the window, its first, and the day before it; (active
    listeners the model knows, inactive ones)."""
    users = [str(u) for u in data.user_ids.tolist()]
    first_day = NEWEST - timedelta(days=ACTIVE_DAYS - 1)
    on_newest, on_first, inactive = users[:15], users[15:25], users[25:35]
    rows = [play(u, NEWEST, i) for i, u in enumerate(on_newest)]
    rows += [play(u, first_day, i) for i, u in enumerate(on_first)]
    rows += [play(u, first_day - timedelta(days=1), i) for i, u in enumerate(inactive)]
    rows.append(play(STRANGER, NEWEST, 99))
    write_rows(settings, SILVER_PLAYS, rows)
    return set(on_newest + on_first), set(inactive)


def stored_lists(client: redis.Redis, model: str) -> dict[str, tuple]:
    """Every recs:v1 list of ``model``: user -> (version, songs)."""
    prefix = f"{RECS_PREFIX}:{model}:"
    lists = {}
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        user = key.decode()[len(prefix) :]
        recs = read_recs(client, model, user)
        lists[user] = (recs.model_version, recs.songs)
    return lists


def test_active_listeners_count_back_from_the_newest_day(settings: Settings, data) -> None:
    active, inactive = write_silver(settings, data)
    assert active_listeners(settings) == sorted(active | {STRANGER})
    assert not set(active_listeners(settings)) & inactive


def test_an_empty_lake_has_no_active_listener_and_says_so(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match=r"silver\.plays holds no plays.*encore lake build"):
        active_listeners(settings)


@pytest.mark.integration
def test_active_listeners_get_the_versions_lists_once_however_often_it_runs(
    served: Settings, data
) -> None:
    name = served.serving.model_name
    active, _ = write_silver(served, data)
    with pytest.raises(NotFoundError, match=f"{name} has no loadable version at alias champion"):
        precompute_lists(served)
    train(served, "als", data, params=ALS, registered_name=name)
    done: list[tuple[int, int]] = []

    result = precompute_lists(served, progress=lambda d, t: done.append((d, t)))

    assert (result.model, result.version) == (name, "1")
    assert (result.listeners, result.written, result.unknown_to_model) == (
        len(active) + 1,
        len(active),
        1,
    )
    assert done[-1] == (len(active), len(active))
    bundle = load_serving_bundle(served)
    assert bundle.index is not None
    with redis.Redis.from_url(served.redis.effective_url) as client:
        lists = stored_lists(client, name)
        assert set(lists) == active  # not the inactive, not the stranger
        for user, (version, songs) in lists.items():
            expected = bundle.recommend(user, TOP_N)
            assert version == "1" and len(songs) == TOP_N
            assert [s for s, _ in songs] == [s for s, _ in expected]
            assert [round(x, 6) for _, x in expected] == [x for _, x in songs]
            assert 0 < client.ttl(recs_key(name, user)) <= TTL_S

        client.expire(recs_key(name, min(active)), 5)
        assert precompute_lists(served).written == len(active)

        assert stored_lists(client, name) == lists  # the same keys, the same lists
        assert client.ttl(recs_key(name, min(active))) > 5  # and a fresh TTL

        # a second version: log_and_register aliases it challenger, whatever it scores
        train(served, "als", data, params={**ALS, "factors": 12}, registered_name=name)
        uri = served.mlflow.effective_tracking_uri
        registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
        registry.set_registered_model_alias(name, "champion", "1")

        # without an A/B test the challenger serves nobody: it must not overwrite anything
        idle = precompute_lists(served, model_alias="challenger")
        assert (idle.version, idle.served, idle.written) == ("2", 0, 0)
        assert stored_lists(client, name) == lists

        # champion against challenger: each listener's list is their own variant's version
        ab = served.model_copy(
            update={
                "serving": served.serving.model_copy(
                    update={"ab_split": {"champion": 1.0, "challenger": 1.0}}
                )
            }
        )
        versions = {"champion": "1", "challenger": "2"}
        arms = {alias: precompute_lists(ab, model_alias=alias) for alias in versions}
        assert sum(r.written for r in arms.values()) == len(active)
        assert all(r.written > 0 for r in arms.values())
        split = stored_lists(client, name)
        assert set(split) == active
        assert {u: v for u, (v, _) in split.items()} == {
            u: versions[assign_variant(ab, u)] for u in active
        }

        # a new champion simply overwrites
        registry.set_registered_model_alias(name, "champion", "2")
        assert precompute_lists(served).version == "2"
        renewed = stored_lists(client, name)
        assert set(renewed) == active
        assert {version for version, _ in renewed.values()} == {"2"}


@pytest.mark.integration
def test_the_command_writes_the_lists_and_says_how_many(
    served: Settings, data, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = served.serving.model_name
    active, _ = write_silver(served, data)
    train(served, "als", data, params=ALS, registered_name=name)
    monkeypatch.setenv("ENCORE_LAKE__ROOT", served.lake.root)
    monkeypatch.setenv("ENCORE_SERVING__MODEL_NAME", name)
    monkeypatch.setenv("ENCORE_SERVING__RECS_ACTIVE_DAYS", str(ACTIVE_DAYS))
    app = typer.Typer()
    register_recs_commands(app)
    app.command("noop")(lambda: None)  # a group of one command would run it without its name
    get_settings.cache_clear()
    try:
        answer = CliRunner().invoke(app, ["recs", "precompute", "--alias", "champion"])
        missing = CliRunner().invoke(app, ["recs", "precompute", "--alias", "nobody"])
    finally:
        get_settings.cache_clear()

    assert answer.exit_code == 0, answer.output
    assert (
        f"recs:v1:{name}: {len(active)} lists of version 1 (champion) written for "
        f"{len(active) + 1} active listeners (1 unknown to the model)"
    ) in answer.output
    with redis.Redis.from_url(served.redis.effective_url) as client:
        assert set(stored_lists(client, name)) == active
    assert missing.exit_code == 1
    assert "no loadable version at alias nobody" in missing.output
