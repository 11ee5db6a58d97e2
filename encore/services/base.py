"""A service declaration, and the paths every service shares under ``ENCORE_HOME``."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from encore import supervisor
from encore.settings import Settings


def _nothing(settings: Settings) -> None:
    return None


@dataclass(frozen=True)
class Service:
    """One process Encore runs: how to prepare it, start it and tell it is healthy.

    A ``core`` service is part of the platform ``encore up`` starts with no names; the others
    (an API, a job) start by name. A ``job`` stops before any service on ``encore down``.
    """

    name: str
    address: Callable[[Settings], str]
    command: Callable[[Settings], list[str]]
    healthy: Callable[[Settings], bool]
    prepare: Callable[[Settings], None] = _nothing
    after_start: Callable[[Settings], None] = _nothing
    run_as: Callable[[], str | None] = lambda: None
    env: Callable[[Settings], dict[str, str]] = lambda settings: {}
    """Added to this process's environment for the child."""
    external: Callable[[Settings], bool] = lambda settings: False
    """Whether settings point at a server elsewhere: then it is only health-checked."""
    needs: tuple[str, ...] = ()
    start_timeout_s: float = 90.0
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 30.0
    core: bool = False
    job: bool = False


@dataclass
class ServiceStatus:
    name: str
    healthy: bool
    pid: int | None
    address: str
    detail: str = ""


def data_dir(settings: Settings, name: str) -> Path:
    return settings.home / "data" / name


def log_file(settings: Settings, name: str) -> Path:
    return supervisor.log_file(settings.home, name)


def pid_file(settings: Settings, name: str) -> Path:
    return supervisor.pid_file(settings.home, name)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
