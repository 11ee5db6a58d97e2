"""Brute-force limits on the auth routes, against the platform's real Redis and PostgreSQL.

Each test counts under client addresses of its own (random ``10.x.y.z``) and usernames of its
own, so the tests share one Redis without sharing counters. Every app in a test is a separate
``create_app()`` (as separate API workers are): the counters they share are Redis's.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
import redis
from fastapi.testclient import TestClient
from starlette.requests import Request

from encore.settings import Settings
from streaming_api.app import create_app
from streaming_api.ratelimit import client_address, parse_networks, username_key
from tests.conftest import free_port

TOKEN = "/api/v1/auth/token"
REGISTER = "/api/v1/auth/register"


def limited(settings: Settings, **api: object) -> Settings:
    return settings.model_copy(update={"api": settings.api.model_copy(update=api)})


def an_address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def a_username() -> str:
    return f"brute-{uuid.uuid4().hex[:10]}"


Clients = Callable[..., TestClient]


@pytest.fixture()
def clients() -> Iterator[Clients]:
    """``clients(settings, address)``: a fresh app (a separate worker) seen from ``address``."""
    with ExitStack() as stack:

        def make(settings: Settings, address: str) -> TestClient:
            return stack.enter_context(TestClient(create_app(settings), client=(address, 40000)))

        yield make


def login(client: TestClient, username: str, password: str = "wrong-password", **kw):
    return client.post(TOKEN, data={"username": username, "password": password}, **kw)


def assert_429(answer, limit: str, window_s: int) -> None:
    assert answer.status_code == 429, answer.text
    retry_after = int(answer.headers["Retry-After"])
    assert 1 <= retry_after <= window_s
    body = answer.json()
    assert limit in body["detail"] and f"retry in {retry_after} s" in body["detail"]
    assert [e["limit"] for e in body["errors"]] == [limit]
    assert body["errors"][0]["type"] == "rate_limited"


@pytest.mark.integration
def test_the_n_plus_first_login_from_one_address_is_429_and_other_addresses_go_on(
    platform: Settings, clients: Clients
) -> None:
    settings = limited(platform, login_rate_per_ip="3/minute", login_rate_per_user="100/minute")
    attacker = an_address()
    first, second = clients(settings, attacker), clients(settings, attacker)
    # three wrong logins, at different usernames, spread over two workers
    for client in (first, second, first):
        assert login(client, a_username()).status_code == 401
    assert_429(login(second, a_username()), "api.login_rate_per_ip", 60)
    assert_429(login(first, a_username()), "api.login_rate_per_ip", 60)
    # a third worker started later sees the same counters
    assert_429(login(clients(settings, attacker), a_username()), "api.login_rate_per_ip", 60)

    bystander = clients(settings, an_address())
    assert login(bystander, a_username()).status_code == 401


@pytest.mark.integration
def test_one_username_is_limited_across_addresses_and_spellings(
    platform: Settings, clients: Clients
) -> None:
    settings = limited(platform, login_rate_per_ip="100/minute", login_rate_per_user="3/minute")
    victim = a_username()
    home = clients(settings, an_address())
    created = home.post(REGISTER, json={"username": victim, "password": "right-password"})
    assert created.status_code == 201
    # three attempts at the same account, from three addresses, in three spellings
    for spelling in (victim, victim.upper(), victim.title()):
        assert login(clients(settings, an_address()), spelling).status_code == 401
    # the account is now closed to everyone for the window, the right password included
    answer = login(clients(settings, an_address()), victim, "right-password")
    assert_429(answer, "api.login_rate_per_user", 60)
    assert answer.json()["errors"][0]["field"] == "username"
    # other accounts from the same addresses are not affected
    assert login(home, a_username()).status_code == 401


@pytest.mark.integration
def test_the_limit_is_a_window_not_a_ban(platform: Settings, clients: Clients) -> None:
    settings = limited(platform, login_rate_per_ip="100/minute", login_rate_per_user="2/4 seconds")
    username = a_username()
    client = clients(settings, an_address())
    assert client.post(REGISTER, json={"username": username, "password": "right-password"})
    assert [login(client, username).status_code for _ in range(2)] == [401, 401]
    refused = login(client, username)
    assert_429(refused, "api.login_rate_per_user", 4)
    # attempts refused meanwhile are not recorded: they do not extend the window
    assert_429(login(client, username), "api.login_rate_per_user", 4)
    time.sleep(int(refused.headers["Retry-After"]) + 0.2)
    assert login(client, username, "right-password").status_code == 200


@pytest.mark.integration
def test_register_is_limited_per_address_and_per_username(
    platform: Settings, clients: Clients
) -> None:
    settings = limited(platform, register_rate_per_ip="2/minute", register_rate_per_user="3/minute")
    address = an_address()
    client = clients(settings, address)
    for _ in range(2):
        answer = client.post(REGISTER, json={"username": a_username(), "password": "pass-word"})
        assert answer.status_code == 201
    answer = client.post(REGISTER, json={"username": a_username(), "password": "pass-word"})
    assert_429(answer, "api.register_rate_per_ip", 60)
    assert answer.json()["errors"][0]["field"] == "(client address)"

    # probing whether one username is taken, from many addresses
    taken = a_username()
    codes = [
        clients(settings, an_address())
        .post(REGISTER, json={"username": taken, "password": "pass-word"})
        .status_code
        for _ in range(4)
    ]
    assert codes == [201, 409, 409, 429]


@pytest.mark.integration
def test_counters_are_in_redis_under_the_ratelimit_prefix_without_usernames(
    platform: Settings, clients: Clients
) -> None:
    username = a_username()
    address = an_address()
    login(clients(limited(platform, login_rate_per_ip="7/minute"), address), username)
    client = redis.Redis.from_url(platform.redis.effective_url)
    try:
        keys = [k.decode() for k in client.scan_iter(match="*", count=1000)]
    finally:
        client.close()
    ours = [k for k in keys if address in k or username_key(username) in k]
    assert sorted(k.split("/")[0] for k in ours) == [
        "ratelimit:v1:LIMITER",
        "ratelimit:v1:LIMITER",
    ]
    assert f"ratelimit:v1:LIMITER/login-ip/{address}/7/1/minute" in ours
    assert not any(username in k for k in keys)


@pytest.mark.integration
def test_redis_down_fails_open_with_a_warning(
    platform: Settings, clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    no_redis = platform.model_copy(
        update={"redis": platform.redis.model_copy(update={"port": free_port()})}
    )
    settings = limited(no_redis, login_rate_per_ip="1/minute", login_rate_per_user="1/minute")
    client = clients(settings, an_address())
    username = a_username()
    with caplog.at_level(logging.WARNING, logger="streaming_api.ratelimit"):
        codes = [login(client, username).status_code for _ in range(3)]
    # the password is still checked (401, not a 200), the limit is not enforced, no 5xx
    assert codes == [401, 401, 401]
    warnings = [r for r in caplog.records if "rate limits not enforced" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a request


@pytest.mark.integration
def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    platform: Settings, clients: Clients
) -> None:
    proxy = an_address()
    rates = {"login_rate_per_ip": "2/minute", "login_rate_per_user": "100/minute"}

    # not trusted (the default): every spoofed header is the same client, the proxy's peer
    client = clients(limited(platform, **rates), proxy)
    codes = [
        login(client, a_username(), headers={"X-Forwarded-For": an_address()}).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]

    # trusted: the client is the right-most address the proxy appended, whatever is left of it
    client = clients(limited(platform, trusted_proxies=f"{proxy}/32", **rates), proxy)
    listener = an_address()
    codes = [
        login(
            client, a_username(), headers={"X-Forwarded-For": f"{an_address()}, {listener}"}
        ).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]
    other = login(client, a_username(), headers={"X-Forwarded-For": an_address()})
    assert other.status_code == 401


def request_from(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 1), "headers": headers})


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.7", "198.51.100.1", "", "203.0.113.7"),
        ("10.0.0.2", "198.51.100.1, 203.0.113.9", "10.0.0.0/8", "203.0.113.9"),
        ("10.0.0.2", "198.51.100.1, 203.0.113.9, 10.0.0.3", "10.0.0.0/8", "203.0.113.9"),
        ("10.0.0.2", None, "10.0.0.0/8", "10.0.0.2"),
        ("2001:db8:1:2:3:4:5:6", None, "", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", None, "", "192.0.2.1"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, trusted: str, expected: str) -> None:
    assert client_address(request_from(peer, forwarded), parse_networks(trusted)) == expected


def test_one_username_key_for_every_spelling() -> None:
    assert len({username_key(n) for n in ("ada", "ADA", " Ada\t", "ａｄａ", "ada")}) == 1
    assert username_key("ada") != username_key("ada2")
    assert username_key("\ud800x") != username_key("x")  # lone surrogates do not crash
