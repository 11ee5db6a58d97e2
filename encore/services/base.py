"""A service declaration, and the paths every service shares under ``ENCORE_HOME``."""

from __future__ import annotations

import errno
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from encore import supervisor
from encore.errors import ServiceError
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
    ports: Callable[[Settings], dict[str, int]] = lambda settings: {}
    """The ports it listens on, keyed by the setting that moves each (``ENCORE_REDIS__PORT``)."""
    needs: tuple[str, ...] = ()
    start_timeout_s: float = 90.0
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 30.0
    core: bool = False
    job: bool = False
    ui: str = ""
    """What a person opens at ``address`` (``encore urls`` lists it), e.g. "Dashboard"."""


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


def check_ports_free(service: Service, settings: Settings) -> None:
    """Raise :class:`ServiceError` naming the port and its setting if another program holds it.

    Called before starting ``service``: a port held by someone else would otherwise show up
    as a start-up timeout, or as a health check answered by the wrong program.
    """
    for setting, port in service.ports(settings).items():
        if not port_in_use(port):
            continue
        holder = port_holder(port)
        held = f" by {holder}" if holder else ""
        raise ServiceError(
            service.name,
            f"port {port} is already in use{held}; stop that program or set {setting} "
            "to a free port",
        )


def port_in_use(port: int) -> bool:
    """Whether a socket listens on ``port`` (on any address): we cannot bind it ourselves."""
    with socket.socket() as sock:
        # a port left in TIME_WAIT by a previous run is free for a server (they all set this)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def port_holder(port: int) -> str | None:
    """``<command> (pid <pid>)`` listening on ``port``, when /proc tells (best effort).

    /proc/net/tcp{,6} give the listening socket's inode; a process's fd links name it. Other
    users' fds are only readable as root; then the answer is None.
    """
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]  # noqa: SIM115
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address is HEXIP:HEXPORT; state 0A is LISTEN
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                command = open(f"/proc/{pid}/comm").read().strip()  # noqa: SIM115
                return f"{command} (pid {pid})"
        except OSError:
            continue
    return None
