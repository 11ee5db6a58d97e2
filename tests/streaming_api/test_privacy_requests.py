"""``/api/v1/me/privacy-requests`` against real PostgreSQL: a listener queues their own
erasure or export (202, one open request per kind), sees only their own requests, and
another listener neither sees nor reuses them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from encore.db import create_engine, privacy_requests
from encore.settings import Settings
from streaming_api.app import create_app

pytestmark = pytest.mark.integration

PATH = "/api/v1/me/privacy-requests"


# generous registration limits: the default 20/hour per address is shared (Redis) with every
# other test module's registrations from the test client's one address
RATES = {"register_rate_per_ip": "10000/minute", "register_rate_per_user": "10000/minute"}


@pytest.fixture(scope="module")
def client(platform: Settings) -> Iterator[TestClient]:
    settings = platform.model_copy(update={"api": platform.api.model_copy(update=RATES)})
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def listener(client: TestClient) -> tuple[str, dict[str, str]]:
    """A new listener: (user id, auth header)."""
    username = f"pia-{uuid.uuid4().hex[:8]}"
    body = {"username": username, "password": "right-to-erasure"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    token = client.post("/api/v1/auth/token", data=body).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    return client.get("/api/v1/me", headers=auth).json()["user_id"], auth


def test_a_listener_queues_their_own_requests_and_another_cannot_see_them(
    client: TestClient, platform: Settings
) -> None:
    alice, alice_auth = listener(client)
    _, bob_auth = listener(client)

    erase = client.post(PATH, headers=alice_auth, json={"kind": "erase"})

    assert erase.status_code == 202, erase.text
    queued = erase.json()
    assert queued["kind"] == "erase" and queued["status"] == "pending"
    deadline = timedelta(hours=platform.lake.privacy_deadline_hours)
    due = datetime.fromisoformat(queued["due_at"]) - datetime.fromisoformat(queued["requested_at"])
    assert due == deadline
    again = client.post(PATH, headers=alice_auth, json={"kind": "erase"})
    assert again.status_code == 202 and again.json() == queued
    export = client.post(PATH, headers=alice_auth, json={"kind": "export"}).json()
    assert export["request_id"] != queued["request_id"]
    mine = [r["request_id"] for r in client.get(PATH, headers=alice_auth).json()]
    assert sorted(mine) == sorted([queued["request_id"], export["request_id"]])
    # the queue names Alice, for the processor
    engine = create_engine(platform, pool_size=1)
    try:
        stored = privacy_requests.get_request(engine, queued["request_id"])
    finally:
        engine.dispose()
    assert stored is not None and stored.user_id == alice

    # Bob: his own request, never Alice's, and none of hers listed
    bobs = client.post(PATH, headers=bob_auth, json={"kind": "erase"})
    assert bobs.status_code == 202
    assert bobs.json()["request_id"] not in mine
    listed = client.get(PATH, headers=bob_auth).json()
    assert [r["request_id"] for r in listed] == [bobs.json()["request_id"]]


def test_privacy_requests_need_a_listener_and_a_known_kind(
    client: TestClient, platform: Settings
) -> None:
    _, auth = listener(client)
    assert client.post(PATH, json={"kind": "erase"}).status_code == 401
    service = {"Authorization": f"Bearer {platform.api.service_token.get_secret_value()}"}
    assert client.post(PATH, headers=service, json={"kind": "erase"}).status_code == 403
    assert client.get(PATH, headers=service).status_code == 403
    for body in ({"kind": "delete"}, {}, {"kind": "erase", "user_id": "someone-else"}):
        assert client.post(PATH, headers=auth, json=body).status_code == 422, body
    assert client.get(PATH, headers=auth).json() == []
