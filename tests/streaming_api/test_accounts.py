"""Logins against real PostgreSQL: an unknown username costs the same hash as a wrong password.

No timing assertions: a spy that forwards to the real ``verify_password`` counts the hash
verifications and the parameters of the hash each login is checked against.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from encore.settings import Settings
from streaming_api import accounts
from streaming_api.app import create_app

pytestmark = pytest.mark.integration

TOKEN = "/api/v1/auth/token"


@pytest.fixture()
def client(platform: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        yield test_client


@pytest.fixture()
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stored hash of every password verification the account store makes."""
    seen: list[str] = []
    real = accounts.verify_password

    def spy(password: str, stored: str) -> bool:
        seen.append(stored)
        return real(password, stored)

    monkeypatch.setattr(accounts, "verify_password", spy)
    return seen


def cost(stored: str) -> list[str]:
    """Scheme and scrypt parameters (n, r, p) of a stored hash."""
    return stored.split("$")[:4]


def test_unknown_user_and_wrong_password_cost_one_equal_hash(
    client: TestClient, verifications: list[str]
) -> None:
    username = f"grace-{uuid.uuid4().hex[:6]}"
    created = client.post(
        "/api/v1/auth/register", json={"username": username, "password": "cobol1959"}
    )
    assert created.status_code == 201

    wrong = client.post(TOKEN, data={"username": username, "password": "fortran57"})
    assert wrong.status_code == 401 and len(verifications) == 1
    real_hash = verifications[0]

    unknown = client.post(
        TOKEN, data={"username": f"nobody-{uuid.uuid4().hex[:6]}", "password": "fortran57"}
    )
    assert unknown.status_code == 401 and len(verifications) == 2
    dummy = verifications[1]
    assert dummy != real_hash and cost(dummy) == cost(real_hash) == ["scrypt", "16384", "8", "1"]

    again = client.post(
        TOKEN, data={"username": f"nobody-{uuid.uuid4().hex[:6]}", "password": "x" * 9}
    )
    assert (
        again.status_code == 401 and len(verifications) == 3 and verifications[2] == dummy
    )  # computed once

    right = client.post(TOKEN, data={"username": username, "password": "cobol1959"})
    assert right.status_code == 200 and len(verifications) == 4


def test_unknown_user_and_wrong_password_get_the_same_answer(client: TestClient) -> None:
    username = f"grace-{uuid.uuid4().hex[:6]}"
    created = client.post(
        "/api/v1/auth/register", json={"username": username, "password": "cobol1959"}
    )
    assert created.status_code == 201
    wrong = client.post(TOKEN, data={"username": username, "password": "fortran57"})
    unknown = client.post(
        TOKEN, data={"username": f"nobody-{uuid.uuid4().hex[:6]}", "password": "fortran57"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]
