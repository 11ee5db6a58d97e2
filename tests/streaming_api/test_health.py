"""Liveness and readiness against real Kafka and PostgreSQL that are stopped and started.

Runs on the platform of ``test_broker_crash`` (its own home and ports), never the shared one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from encore import services
from encore.settings import Settings
from streaming_api.app import create_app
from tests.streaming_api.test_broker_crash import own_platform, wait_until

pytestmark = pytest.mark.integration

__all__ = ["own_platform"]  # the module-scoped fixture, shared with the crash tests

# readiness_timeout_ms is 1 s on that platform; the rest is slack on a shared machine
READY_BOUND_S = 1.0 + 2.5


@pytest.fixture()
def client(own_platform: Settings) -> Iterator[TestClient]:
    services.up(own_platform, ["kafka", "postgres"])
    with TestClient(create_app(own_platform)) as test_client:
        yield test_client
    services.up(own_platform, ["kafka", "postgres"])  # leave it whole for the next test


def ready(client: TestClient) -> tuple[int, dict, float]:
    started = time.monotonic()
    answer = client.get("/api/v1/health/ready")
    return answer.status_code, answer.json(), time.monotonic() - started


def assert_names_only(body: dict, settings: Settings) -> None:
    text = str(body)
    for secret in ("postgresql://", settings.postgres.user + "@", str(settings.postgres.port)):
        assert secret not in text, f"readiness must not expose connection details: {text}"
    assert str(settings.kafka.port) not in text


def test_all_up_is_ready_and_live(client: TestClient) -> None:
    status, body, _ = ready(client)
    assert status == 200, body
    assert body["status"] == "ok" and body["checks"] == {"kafka": "ok", "postgres": "ok"}
    assert client.get("/api/v1/health/live").json() == {"status": "ok"}
    assert client.get("/api/v1/health").json() == {"status": "ok", "kafka": "connected"}


def test_kafka_stopped_is_not_ready_then_ready_again(
    client: TestClient, own_platform: Settings
) -> None:
    services.down(own_platform, ["kafka"])
    status, body, took = ready(client)
    assert status == 503, body
    assert body["checks"]["kafka"] != "ok" and body["checks"]["postgres"] == "ok"
    assert "kafka" in body["detail"] and "postgres" not in body["detail"]
    assert took <= READY_BOUND_S, f"readiness took {took:.1f} s"
    assert_names_only(body, own_platform)
    live = client.get("/api/v1/health/live")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    legacy = client.get("/api/v1/health")
    assert legacy.status_code == 200
    assert legacy.json() == {"status": "degraded", "kafka": "unreachable"}

    services.up(own_platform, ["kafka"])
    wait_until("ready after Kafka's return", lambda: ready(client)[0] == 200, 30)
    assert client.get("/api/v1/health/live").status_code == 200


def test_postgres_stopped_is_not_ready_then_ready_again(
    client: TestClient, own_platform: Settings
) -> None:
    services.down(own_platform, ["postgres"])
    status, body, took = ready(client)
    assert status == 503, body
    assert body["checks"]["postgres"] != "ok" and body["checks"]["kafka"] == "ok"
    assert "postgres" in body["detail"] and "kafka" not in body["detail"]
    assert took <= READY_BOUND_S, f"readiness took {took:.1f} s"
    assert_names_only(body, own_platform)
    assert client.get("/api/v1/health/live").status_code == 200

    services.up(own_platform, ["postgres"])
    wait_until("ready after PostgreSQL's return", lambda: ready(client)[0] == 200, 30)


def test_liveness_calls_nothing(own_platform: Settings) -> None:
    services.down(own_platform, ["kafka", "postgres"])
    try:
        with TestClient(create_app(own_platform)) as client:
            started = time.monotonic()
            live = client.get("/api/v1/health/live")
            assert live.status_code == 200 and time.monotonic() - started < 2.0
            status, body, _ = ready(client)
            assert status == 503 and body["detail"] == "not ready: kafka, postgres down"
    finally:
        services.up(own_platform, ["kafka", "postgres"])
