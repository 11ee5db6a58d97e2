"""``encore up`` on a port another program holds fails at once, naming service, port, setting.

Before: Redis exited at start-up and ``up`` waited for its health check to time out; Kafka
on a held controller port failed the same slow way.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from encore.services import registry
from encore.services.base import port_holder, port_in_use
from encore.settings import Settings
from tests.conftest import make_platform_home, platform_env


@pytest.fixture()
def held() -> Iterator[socket.socket]:
    """A port held by a plain listener in this process (not a service we started)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener


def _encore_up(name: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    home = make_platform_home("encore-ports-")
    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")},
        **platform_env(home),
        **env,
    }
    started = time.monotonic()
    try:
        result = subprocess.run(
            [str(Path(sys.executable).with_name("encore")), "up", name],
            env=full,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        subprocess.run(
            [str(Path(sys.executable).with_name("encore")), "down"],
            env=full,
            capture_output=True,
            timeout=120,
            check=False,
        )
        subprocess.run(["rm", "-rf", str(home)], check=False)
    return result, time.monotonic() - started


def _assert_one_line(result: subprocess.CompletedProcess, *parts: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("service", "setting"),
    [("redis", "ENCORE_REDIS__PORT"), ("kafka", "ENCORE_KAFKA__CONTROLLER_PORT")],
)
def test_up_on_a_held_port_names_service_port_and_setting(
    held: socket.socket, service: str, setting: str
) -> None:
    port = held.getsockname()[1]
    result, elapsed = _encore_up(service, {setting: str(port)})
    print(f"encore up {service} on held port {port}: exit {result.returncode} in {elapsed:.1f} s")
    _assert_one_line(result, f"{service}:", f"port {port}", setting)
    # we are root in CI and can read our own fds in any case: the holder is this process
    assert f"(pid {os.getpid()})" in result.stderr
    assert elapsed < 60
    # the holder's socket is untouched: still listening, and it accepts
    assert held.fileno() != -1
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_port_check_sees_listeners_not_closed_ports(held: socket.socket) -> None:
    port = held.getsockname()[1]
    assert port_in_use(port)
    assert port_holder(port) == f"{_comm()} (pid {os.getpid()})"
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed = free.getsockname()[1]
    assert not port_in_use(closed)
    assert port_holder(closed) is None


def test_every_core_service_declares_its_ports() -> None:
    settings = Settings()
    ports = {name: service.ports(settings) for name, service in registry().items()}
    assert ports["redis"] == {"ENCORE_REDIS__PORT": settings.redis.port}
    assert ports["postgres"] == {"ENCORE_POSTGRES__PORT": settings.postgres.port}
    assert ports["mlflow"] == {"ENCORE_MLFLOW__PORT": settings.mlflow.port}
    assert ports["kafka"] == {
        "ENCORE_KAFKA__PORT": settings.kafka.port,
        "ENCORE_KAFKA__CONTROLLER_PORT": settings.kafka.controller_port,
    }
    assert ports["api"] == {"ENCORE_API__PORT": settings.api.port}


def _comm() -> str:
    return Path(f"/proc/{os.getpid()}/comm").read_text().strip()
