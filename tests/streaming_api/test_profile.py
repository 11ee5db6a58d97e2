"""Registration with e-mail and country, and ``/api/v1/me``, against real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from encore.settings import Settings
from streaming_api.app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(platform: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def register(client: TestClient, **extra: str) -> tuple[str, dict[str, str]]:
    username = f"ada-{uuid.uuid4().hex[:8]}"
    body = {"username": username, "password": "analytical-engine", **extra}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201, body
    token = client.post(
        "/api/v1/auth/token", data={"username": username, "password": "analytical-engine"}
    ).json()["access_token"]
    return username, {"Authorization": f"Bearer {token}"}


def test_a_new_listener_reads_and_changes_their_profile(client: TestClient) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.org"
    username, auth = register(client, email=email, country="GB")
    profile = client.get("/api/v1/me", headers=auth).json()
    assert profile["username"] == username and profile["email"] == email
    assert profile["country"] == "GB" and profile["subscription_plan"] == "free"
    assert profile["allow_explicit"] is True and "password_hash" not in profile

    changed = client.patch(
        "/api/v1/me", headers=auth, json={"country": "SE", "allow_explicit": False}
    )
    assert changed.status_code == 200
    assert changed.json()["country"] == "SE" and changed.json()["allow_explicit"] is False
    assert changed.json()["email"] == email  # left out: unchanged
    assert client.get("/api/v1/me", headers=auth).json()["country"] == "SE"


def test_profile_rules_answer_4xx_with_reasons(client: TestClient) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.org"
    register(client, email=email)
    _, second = register(client)
    taken = client.patch("/api/v1/me", headers=second, json={"email": email.upper()})
    assert taken.status_code == 409 and "e-mail" in taken.json()["detail"]
    for body in ({"country": "XX"}, {"country": "gb"}, {"email": "not-an-address"}):
        answer = client.patch("/api/v1/me", headers=second, json=body)
        assert answer.status_code == 422, body
    plan = client.patch("/api/v1/me", headers=second, json={"subscription_plan": "premium"})
    assert plan.status_code == 422  # billing's, not the listener's
    duplicate = client.post(
        "/api/v1/auth/register",
        json={"username": f"x-{uuid.uuid4().hex[:8]}", "password": "12345678", "email": email},
    )
    assert duplicate.status_code == 409
    # a taken username that merely contains "email" is named as the username
    taken_name = f"myemail-{uuid.uuid4().hex[:6]}"
    body = {"username": taken_name, "password": "12345678"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    again = client.post("/api/v1/auth/register", json=body)
    assert again.status_code == 409 and "username" in again.json()["detail"]


def test_me_needs_a_listener(client: TestClient, platform: Settings) -> None:
    assert client.get("/api/v1/me").status_code == 401
    service = {"Authorization": f"Bearer {platform.api.service_token.get_secret_value()}"}
    assert client.get("/api/v1/me", headers=service).status_code == 403
