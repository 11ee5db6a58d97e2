"""The API refuses the built-in default secrets unless development is on.

No platform needed: Kafka and PostgreSQL point at closed ports, which the API tolerates at
start-up (requests that need them answer 503).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from encore.errors import ConfigurationError
from encore.settings import Settings
from streaming_api.app import create_app
from tests.conftest import free_port

ENCORE = str(Path(sys.executable).parent / "encore")
EXPLICIT = {
    "ENCORE_API__SERVICE_TOKEN": "a-real-service-token",
    "ENCORE_API__JWT_SECRET": "j" * 32,
    "ENCORE_MEDIA__STREAM_SECRET": "m" * 32,
}


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its ENCORE_* variables, on closed ports."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ENCORE_")}
    return {
        **env,
        "ENCORE_HOME": str(home),
        "ENCORE_DEVELOPMENT": "false",
        "ENCORE_KAFKA__PORT": str(free_port()),
        "ENCORE_POSTGRES__PORT": str(free_port()),
        "ENCORE_API__PORT": str(free_port()),
        **extra,
    }


def test_encore_api_with_default_secrets_exits_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [ENCORE, "api"], env=isolated_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "ENCORE_API__SERVICE_TOKEN" in lines[0] and "ENCORE_API__JWT_SECRET" in lines[0]
    assert "ENCORE_DEVELOPMENT=true" in lines[0]


def test_encore_api_with_explicit_secrets_serves(tmp_path: Path) -> None:
    env = isolated_env(tmp_path, **EXPLICIT)
    server = subprocess.Popen(
        [ENCORE, "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{env['ENCORE_API__PORT']}/openapi.json"
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(url, timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "encore api did not answer in 60 s"
                time.sleep(0.2)
        assert answer.status_code == 200
        assert answer.json()["info"]["title"] == "Encore streaming API"
    finally:
        server.terminate()
        server.wait(timeout=15)


def closed_ports_settings(development: bool) -> Settings:
    return Settings(
        development=development,
        kafka={"port": free_port()},
        postgres={"port": free_port()},
    )


def test_create_app_refuses_default_secrets_outside_development() -> None:
    with pytest.raises(ConfigurationError, match="ENCORE_API__SERVICE_TOKEN"):
        create_app(closed_ports_settings(development=False))


def test_development_accepts_the_default_secrets() -> None:
    settings = closed_ports_settings(development=True)
    with TestClient(create_app(settings)) as client:
        assert client.get("/openapi.json").status_code == 200
        # the default service token authenticates: the empty batch gets as far as a 422
        token = settings.api.service_token.get_secret_value()
        answers = {
            bearer: client.post(
                "/api/v1/playback-events",
                json={"events": []},
                headers={"Authorization": f"Bearer {bearer}"},
            )
            for bearer in (token, "not-the-token")
        }
    assert answers[token].status_code == 422, answers[token].text
    assert answers["not-the-token"].status_code == 401
