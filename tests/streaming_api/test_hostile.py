"""Hostile input gets a 4xx naming the problem: never a 500, never a silent accept.

Against the real app (TestClient on the platform's Kafka, PostgreSQL and Redis), and a real
``encore api`` process for bodies streamed in chunks (the process's memory is measured).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from encore import services
from encore.countries import ASSIGNED_COUNTRY_CODES
from encore.errors import ContractError
from encore.settings import Settings
from streaming_api.app import create_app
from tests.conftest import free_port
from tests.events import play_event
from tests.streaming_api.conftest import create_topic, with_topic

pytestmark = pytest.mark.integration

EVENTS = "/api/v1/playback-events"
REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
# generous auth rate limits: these tests register and log in many times from one address
RATES = {
    "login_rate_per_ip": "10000/minute",
    "login_rate_per_user": "10000/minute",
    "register_rate_per_ip": "10000/minute",
    "register_rate_per_user": "10000/minute",
}


def hostile_settings(platform: Settings, **api: object) -> Settings:
    topic = f"test-hostile-{uuid.uuid4().hex[:8]}"
    create_topic(platform, topic)
    return with_topic(platform, topic, **RATES, **api)


@pytest.fixture(scope="module")
def client(platform: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(hostile_settings(platform))) as test_client:
        yield test_client


def service(client: TestClient) -> dict[str, str]:
    token = client.app.state.settings.api.service_token.get_secret_value()
    return {"Authorization": f"Bearer {token}"}


def play(**overrides: object) -> dict:
    return play_event(**{"user_id": "hostile-u1", **overrides})


def name() -> str:
    return f"h{uuid.uuid4().hex[:10]}"


# --- credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("nul\x00user", "long enough password"),
        ("ok-user", "long enough\x00password"),
        ("tab\tuser", "long enough password"),
        ("ok-user", "long enough\x1bpassword"),
    ],
    ids=["nul-username", "nul-password", "tab-username", "esc-password"],
)
def test_control_characters_in_credentials_are_422(
    client: TestClient, username: str, password: str
) -> None:
    field = "username" if username != "ok-user" else "password"
    answers = {
        "register": client.post(REGISTER, json={"username": username, "password": password}),
        "token json": client.post(TOKEN, json={"username": username, "password": password}),
        "token form": client.post(TOKEN, data={"username": username, "password": password}),
    }
    for route, answer in answers.items():
        assert answer.status_code == 422, (route, answer.text)
        assert field in answer.text, (route, answer.text)
        assert password not in answer.text and "enough" not in answer.text, (route, answer.text)


def test_a_username_with_a_trailing_newline_is_422(client: TestClient) -> None:
    user = name()
    password = "long enough password"
    assert client.post(REGISTER, json={"username": user, "password": password}).status_code == 201
    answer = client.post(REGISTER, json={"username": user + "\n", "password": password})
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["username"]
    # the account store's own rule is a full match too (it does not trust the route)
    store = client.app.state.accounts
    with pytest.raises(ContractError, match="username"):
        store.register(user + "\n", password)
    with pytest.raises(ContractError, match="control characters"):
        store.authenticate(user + "\x00", password)


def test_422_bodies_never_echo_a_password(client: TestClient) -> None:
    secret = "Sh0rt!"  # under the 8-character minimum
    answers = [
        client.post(REGISTER, json={"username": name(), "password": secret}),
        client.post(TOKEN, json={"username": name(), "password": secret}),
        client.post(TOKEN, json={"username": "x", "password": secret}),
        client.post(TOKEN, data={"username": "bad name", "password": secret + "\x00"}),
        client.post(REGISTER, json={"username": "bad name", "password": secret * 3}),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert secret not in answer.text, answer.text
        assert "input" not in json.dumps(answer.json().get("errors", [])), answer.text


def test_unparseable_bodies_and_grant_types_are_422(client: TestClient) -> None:
    # not UTF-8: FastAPI's undocumented 400 "error parsing the body" becomes our 422
    answer = client.post(
        REGISTER, content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "(body)"
    form = {"username": name(), "password": "long enough pw", "grant_type": "client_credentials"}
    answer = client.post(TOKEN, data=form)
    assert answer.status_code == 422 and "grant_type" in answer.json()["detail"], answer.text


# --- events ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"end_time": "9999-12-31T23:59:59-05:00"}, "end_time"),
        (
            {"start_time": "9999-12-31T23:59:59-05:00", "end_time": "9999-12-31T23:59:59-05:00"},
            "start_time",
        ),
        ({"start_time": "0001-01-01T00:00:00+05:00"}, "start_time"),
        ({"start_time": "0001-01-01T00:00:00Z"}, "start_time"),
        ({"end_time": "9999-12-31T23:59:59Z"}, "end_time"),
        (
            {"start_time": "9999-12-31T23:59:00Z", "end_time": "9999-12-31T23:59:59Z"},
            "start_time",
        ),
    ],
    ids=["end-9999-neg", "start-9999-neg", "start-0001-pos", "start-0001", "end-9999", "9999"],
)
def test_times_out_of_range_are_422_naming_the_field(
    client: TestClient, overrides: dict, field: str
) -> None:
    bad = play(ms_played=0, event_type="like", **overrides)
    for body, index in ((bad, None), ({"events": [play(), bad]}, 1)):
        answer = client.post(EVENTS, json=body, headers=service(client))
        assert answer.status_code == 422, answer.text
        assert (index, field) in {(e["index"], e["field"]) for e in answer.json()["errors"]}


def test_the_assigned_country_list() -> None:
    assert len(ASSIGNED_COUNTRY_CODES) == 249
    assert {"SE", "US", "GB", "AX", "SS", "BQ", "CW", "SX", "TW", "PS"} <= ASSIGNED_COUNTRY_CODES
    assert not {"ZZ", "XX", "AA", "QM", "XK", "UK", "EU", "AN", "YU"} & ASSIGNED_COUNTRY_CODES


@pytest.mark.parametrize("code", ["ZZ", "XX", "AA", "QM", "UK"])
def test_unassigned_country_codes_are_422(client: TestClient, code: str) -> None:
    answer = client.post(EVENTS, json=play(country_code=code), headers=service(client))
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert error["field"] == "country_code" and "ISO 3166-1" in error["reason"]


def test_assigned_country_codes_are_accepted(client: TestClient) -> None:
    batch = [play(country_code=code) for code in ("SE", "US", "AX", "SS", "TW")]
    answer = client.post(EVENTS, json={"events": batch}, headers=service(client))
    assert answer.status_code == 202, answer.text


def test_the_same_event_id_twice_in_a_batch_is_422_naming_both_indexes(
    client: TestClient,
) -> None:
    first = play()
    batch = [first, play(), play(event_id=first["event_id"], song_id="s2")]
    answer = client.post(EVENTS, json={"events": batch}, headers=service(client))
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert (error["index"], error["field"]) == (2, "event_id")
    assert "index 0" in error["reason"] and first["event_id"] in error["reason"]
    # the slow path (another item also invalid) names it too
    batch.append(play(country_code="ZZ"))
    answer = client.post(EVENTS, json={"events": batch}, headers=service(client))
    assert answer.status_code == 422
    assert {(e["index"], e["field"]) for e in answer.json()["errors"]} == {(3, "country_code")}


# --- body size ------------------------------------------------------------------------------

LIMIT = 1_000_000
STREAMED = 48 * LIMIT


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def api_process(platform: Settings) -> Iterator[tuple[str, int, Settings]]:
    settings = hostile_settings(platform, max_body_bytes=LIMIT)
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"port": free_port()})}
    )
    instance = f"api-hostile-{uuid.uuid4().hex[:6]}"
    with services.running(
        settings, "api", instance=instance, env={"ENCORE_DEVELOPMENT": "true"}
    ) as api:
        pid = services.running_pid(settings, instance)
        assert pid is not None
        yield api.address(settings), pid, settings


def chunks(total: int, first: bytes = b'{"username": "') -> Iterator[bytes]:
    yield first
    sent, block = len(first), b"a" * 65536
    while sent < total:
        yield block
        sent += len(block)


@pytest.mark.parametrize("route", [REGISTER, TOKEN, EVENTS])
def test_a_chunked_body_over_the_limit_is_413_while_reading(
    api_process: tuple[str, int, Settings], route: str
) -> None:
    base, pid, settings = api_process
    headers = {"Content-Type": "application/json"}
    if route == EVENTS:
        headers["Authorization"] = f"Bearer {settings.api.service_token.get_secret_value()}"
    httpx.get(f"{base}/api/v1/health/live")  # warm
    before = rss_bytes(pid)
    answer = httpx.post(f"{base}{route}", content=chunks(STREAMED), headers=headers, timeout=60)
    grown = rss_bytes(pid) - before
    assert answer.status_code == 413, answer.text
    assert str(LIMIT) in answer.json()["detail"]
    assert grown < STREAMED // 8, f"the API grew by {grown} bytes for a {STREAMED}-byte body"


def test_a_declared_length_over_the_limit_is_413(api_process: tuple[str, int, Settings]) -> None:
    base, _, _ = api_process
    answer = httpx.post(f"{base}{REGISTER}", content=b"x" * (LIMIT + 1), timeout=60)
    assert answer.status_code == 413, answer.text
    assert f"has {LIMIT + 1} bytes; the limit is {LIMIT}" in answer.json()["detail"]


def test_a_chunked_body_just_under_the_limit_works(
    api_process: tuple[str, int, Settings],
) -> None:
    base, _, _ = api_process
    user = name()
    body = json.dumps({"username": user, "password": "long enough password"}).encode()
    padded = body[:-1] + b" " * (LIMIT - len(body) - 16) + b"}"

    def stream() -> Iterator[bytes]:
        for at in range(0, len(padded), 65536):
            yield padded[at : at + 65536]

    started = time.monotonic()
    answer = httpx.post(
        f"{base}{REGISTER}",
        content=stream(),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 201, (answer.text, time.monotonic() - started)
    assert answer.json()["username"] == user


# --- what a 503 says ------------------------------------------------------------------------


def test_a_503_names_the_dependency_not_its_dsn(platform: Settings) -> None:
    port = free_port()  # nothing listens there
    dsn = f"postgresql://secret-user:hunter22@127.0.0.1:{port}/secret-db"
    settings = hostile_settings(platform)
    settings = settings.model_copy(
        update={"postgres": settings.postgres.model_copy(update={"dsn": dsn})}
    )
    with TestClient(create_app(settings)) as client:
        answers = [
            client.post(REGISTER, json={"username": name(), "password": "long enough pw"}),
            client.post(TOKEN, data={"username": name(), "password": "long enough pw"}),
        ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert "PostgreSQL" in answer.json()["detail"]
        for secret in ("secret-user", "hunter22", "secret-db", str(port), "127.0.0.1"):
            assert secret not in answer.text, answer.text
