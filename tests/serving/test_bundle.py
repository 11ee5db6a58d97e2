"""Serving follows the registry: models registered on the real MLflow server, loaded with
their FAISS index, and swapped while readers keep asking."""

from __future__ import annotations

import threading
import uuid

import pytest
from mlflow import MlflowClient

from encore.settings import Settings
from models.interactions import InteractionDataset
from models.synthetic import generate
from models.training import train
from serving.bundle import ModelHolder

pytestmark = pytest.mark.integration

ALS = {"factors": 16, "iterations": 8, "weighting": "log"}


@pytest.fixture(scope="module")
def data() -> InteractionDataset:
    return generate(users=200, items=300, genres=8, tags=60, seed=11)


@pytest.fixture()
def serving(platform: Settings) -> Settings:
    name = f"test-serving-{uuid.uuid4().hex[:8]}"
    return platform.model_copy(
        update={"serving": platform.serving.model_copy(update={"model_name": name})}
    )


def test_nothing_registered_serves_nothing(serving: Settings) -> None:
    holder = ModelHolder(serving)
    assert holder.refresh() is False
    assert holder.current is None


def test_the_index_answers_what_the_model_would(serving: Settings, data) -> None:
    train(serving, "als", data, params=ALS, registered_name=serving.serving.model_name)
    holder = ModelHolder(serving)

    assert holder.refresh() is True
    bundle = holder.current
    assert bundle is not None and bundle.version == "1" and bundle.index is not None
    user = str(bundle.user_ids[0])
    by_index = bundle.recommend(user, 10)

    assert len(by_index) == 10
    assert not {song for song, _ in by_index} & bundle.played(user)
    # the exact index ranks by the same inner products as the model itself
    ids, _ = bundle.model.recommend(0, bundle.user_items[0], N=10)
    assert [song for song, _ in by_index] == [str(bundle.item_ids[i]) for i in ids]
    scores = [score for _, score in by_index]
    assert scores == sorted(scores, reverse=True)
    song = str(bundle.item_ids[3])
    similar = bundle.similar(song, 5)
    assert len(similar) == 5 and song not in {s for s, _ in similar}
    assert bundle.recommend("nobody", 10) == [] and bundle.similar("no-song", 5) == []
    assert holder.refresh() is False  # same version: nothing reloads


def test_a_new_champion_swaps_in_while_readers_keep_reading(serving: Settings, data) -> None:
    name = serving.serving.model_name
    train(serving, "pop", data, registered_name=name)
    holder = ModelHolder(serving)
    holder.refresh()
    assert holder.current is not None and holder.current.version == "1"
    train(serving, "als", data, params=ALS, registered_name=name)
    uri = serving.mlflow.effective_tracking_uri
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
        name, "champion", "2"
    )
    users = [str(u) for u in holder.current.user_ids[:20]]
    answers: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                bundle = holder.current
                for user in users:
                    answers.append((bundle.version, len(bundle.recommend(user, 10))))
            except BaseException as error:  # any failure of a reader is the test's failure
                errors.append(error)
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    swapped = holder.refresh()
    done.set()
    for reader in readers:
        reader.join()

    assert swapped and holder.current.version == "2"
    assert errors == []
    versions = {version for version, _ in answers}
    assert "1" in versions and versions <= {"1", "2"}  # read during the load, never a mix
    assert all(count == 10 for _, count in answers)
    assert holder.current.index is not None
