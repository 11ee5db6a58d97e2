"""The API against real Kafka and PostgreSQL: what a 202 promises is on the topic."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from encore import services
from encore.events import PlayEventV1
from encore.settings import Settings
from streaming_api.app import create_app
from tests.conftest import free_port
from tests.streaming_api.conftest import with_topic
from tests.streaming_api.test_playback import event
from tests.topics import read_all

pytestmark = pytest.mark.integration

URL = "/api/v1/playback-events"


def service(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.api.service_token.get_secret_value()}"}


@pytest.fixture()
def client(topic_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(topic_settings)) as test_client:
        yield test_client


def test_single_and_batch_are_on_the_topic_keyed_by_user(
    client: TestClient, topic_settings: Settings
) -> None:
    single = event(user_id="solo")
    answer = client.post(URL, json=single, headers=service(topic_settings))
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 1, "event_ids": [single["event_id"]]}

    batch = [event(user_id=f"u{i % 7}") for i in range(300)]
    answer = client.post(URL, json={"events": batch}, headers=service(topic_settings))
    assert answer.status_code == 202
    assert answer.json()["event_ids"] == [e["event_id"] for e in batch]

    records = read_all(topic_settings)
    assert len(records) == 301
    by_id = {}
    for record in records:
        parsed = PlayEventV1.model_validate_json(record.value)
        assert record.key == parsed.user_id.encode()
        assert record.value == parsed.to_json_bytes()
        by_id[str(parsed.event_id)] = parsed
    for sent in [single, *batch]:
        assert by_id[sent["event_id"]] == PlayEventV1.model_validate(sent)
    # one listener's events share a partition, so they stay in order
    partitions = {r.key: set() for r in records}
    for record in records:
        partitions[record.key].add(record.partition)
    assert all(len(p) == 1 for p in partitions.values())


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"mood": "happy"}, "mood"),
        ({"ms_played": "lots"}, "ms_played"),
        ({"event_type": "pause"}, "event_type"),
        ({"ms_played": -5}, "ms_played"),
    ],
)
def test_a_bad_item_rejects_the_whole_batch(
    client: TestClient, topic_settings: Settings, bad: dict, field: str
) -> None:
    batch = [event(user_id="good") for _ in range(10)]
    batch[6] = event(user_id="bad", **bad)
    answer = client.post(URL, json={"events": batch}, headers=service(topic_settings))
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(6, field)]
    assert "nothing from this request was accepted" in answer.json()["detail"]
    assert read_all(topic_settings) == []  # every partition read to its end offset


def test_invalid_json_and_oversize_batch(client: TestClient, topic_settings: Settings) -> None:
    headers = {**service(topic_settings), "Content-Type": "application/json"}
    answer = client.post(URL, content=b'{"events": [{"user_id": ', headers=headers)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "(body)"
    limit = topic_settings.api.max_batch_events
    answer = client.post(URL, json={"events": [event() for _ in range(limit + 1)]}, headers=headers)
    assert answer.status_code == 413
    assert f"at most {limit} events" in answer.json()["detail"]
    assert read_all(topic_settings) == []


def test_body_over_the_byte_limit_is_413(topic_settings: Settings) -> None:
    settings = with_topic(
        topic_settings, topic_settings.kafka.play_events_topic, max_body_bytes=1000
    )
    with TestClient(create_app(settings)) as client:
        answer = client.post(
            URL, json={"events": [event() for _ in range(10)]}, headers=service(settings)
        )
    assert answer.status_code == 413 and "limit is 1000" in answer.json()["detail"]
    assert read_all(settings) == []


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Token abc"])
def test_unauthenticated_posts_are_401(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    answer = client.post(URL, json=event(), headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


def test_listener_flow(client: TestClient, topic_settings: Settings) -> None:
    username = f"ada-{uuid.uuid4().hex[:6]}"
    created = client.post(
        "/api/v1/auth/register", json={"username": username, "password": "analytical"}
    )
    assert created.status_code == 201
    user_id = created.json()["user_id"]
    again = client.post(
        "/api/v1/auth/register", json={"username": username, "password": "whatever1"}
    )
    assert again.status_code == 409

    wrong = client.post("/api/v1/auth/token", data={"username": username, "password": "nope1234"})
    assert wrong.status_code == 401
    # OAuth2 password form and JSON both work
    form = client.post("/api/v1/auth/token", data={"username": username, "password": "analytical"})
    as_json = client.post(
        "/api/v1/auth/token", json={"username": username, "password": "analytical"}
    )
    assert form.status_code == as_json.status_code == 200
    assert form.json()["user_id"] == user_id
    listener = {"Authorization": f"Bearer {form.json()['access_token']}"}

    own = [event(user_id=user_id) for _ in range(3)]
    assert client.post(URL, json={"events": own}, headers=listener).status_code == 202
    mixed = [event(user_id=user_id), event(user_id="someone-else")]
    denied = client.post(URL, json={"events": mixed}, headers=listener)
    assert denied.status_code == 403 and "someone-else" in denied.json()["detail"]

    assert [r.key for r in read_all(topic_settings)] == [user_id.encode()] * 3


def test_bad_registration_is_422(client: TestClient) -> None:
    answer = client.post("/api/v1/auth/register", json={"username": "a b c", "password": "x" * 9})
    assert answer.status_code == 422
    answer = client.post("/api/v1/auth/register", json={"username": "abc"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "password"


def test_unreachable_kafka_is_503_and_claims_nothing(platform: Settings) -> None:
    closed = platform.model_copy(
        update={
            "kafka": platform.kafka.model_copy(
                update={"bootstrap_servers": f"localhost:{free_port()}"}
            ),
            "api": platform.api.model_copy(update={"produce_timeout_ms": 1500}),
        }
    )
    with TestClient(create_app(closed)) as client:
        assert client.get("/api/v1/health").json() == {"status": "degraded", "kafka": "unreachable"}
        answer = client.post(URL, json={"events": [event()]}, headers=service(closed))
    assert answer.status_code == 503
    assert "unreachable" in answer.json()["detail"] and "event_ids" not in answer.json()


def test_openapi_documents_the_batch_limit(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    post = schema["paths"][URL]["post"]
    assert "422" in post["responses"] and "503" in post["responses"]
    batch = schema["components"]["schemas"]["PlayEventBatch"]
    assert batch["properties"]["events"]["maxItems"] == 1000
    assert client.get("/docs").status_code == 200


def test_encore_api_serves_it(topic_settings: Settings) -> None:
    settings = topic_settings.model_copy(
        update={"api": topic_settings.api.model_copy(update={"port": free_port()})}
    )
    with services.running(
        settings, "api", instance="api-test-app", env={"ENCORE_DEVELOPMENT": "true"}
    ) as api:
        base = api.address(settings)
        health = httpx.get(f"{base}/api/v1/health")
        assert health.json()["status"] == "ok"
        batch = [event(user_id="cli") for _ in range(20)]
        answer = httpx.post(f"{base}{URL}", json={"events": batch}, headers=service(topic_settings))
        assert answer.status_code == 202 and answer.json()["accepted"] == 20
