"""The one process supervisor: everything Encore starts runs and stops through here.

A supervised process runs in its own session (so its whole process group can be signalled:
a JVM's children, MLflow's workers, a Flink job's Python workers), writes its output to
``<home>/logs/<name>.log`` and is recorded as ``<pid> <start-ticks>`` in
``<home>/run/<name>.pid``. Only that very process is ever signalled: a pid whose kernel start
time no longer matches the recorded one has been recycled and is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from encore.errors import ServiceError

log = logging.getLogger(__name__)


def log_file(home: Path, name: str) -> Path:
    return home / "logs" / f"{name}.log"


def pid_file(home: Path, name: str) -> Path:
    return home / "run" / f"{name}.pid"


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; fields after it are space-separated
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is gone for our purposes
        return None
    return int(fields[19])


def running_pid(home: Path, name: str) -> int | None:
    """The pid recorded for ``name`` if that very process is still alive (never a recycled one)."""
    try:
        pid_text, ticks_text = pid_file(home, name).read_text().split()
        pid, ticks = int(pid_text), int(ticks_text)
    except (OSError, ValueError):
        return None
    return pid if start_ticks(pid) == ticks else None


def recorded_group(home: Path, name: str) -> int | None:
    """The process group recorded for ``name`` while any process of it is alive."""
    pid = running_pid(home, name)
    if pid is not None:
        return pid
    try:
        pgid = int(pid_file(home, name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    # the leader is gone (or its pid now names another process: then leave it alone). Its
    # group may outlive it, and the kernel reuses no pid while a group of that id lives, so
    # any live member of the group is ours.
    return pgid if start_ticks(pgid) is None and group_alive(pgid) else None


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process remains in process group ``pgid``."""
    _reap(pgid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _record(home: Path, name: str, pid: int) -> None:
    path = pid_file(home, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid} {start_ticks(pid)}\n")


def start(
    home: Path,
    name: str,
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start ``command`` in its own session, output to its log file; returns its pid.

    ``env`` is the child's whole environment (default: ours).
    """
    log_path = log_file(home, name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_handle:
        process = subprocess.Popen(
            command,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd or home,
            env=env,
            user=user,
            start_new_session=True,
        )
    _record(home, name, process.pid)
    log.info("started %s (pid %d): %s", name, process.pid, " ".join(command))
    return process.pid


def run_foreground(home: Path, name: str, command: list[str], *, env: dict[str, str]) -> int:
    """Run ``command`` attached to this terminal, recorded while it runs; its exit code."""
    process = subprocess.Popen(command, env=env)
    _record(home, name, process.pid)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        return process.wait()
    finally:
        pid_file(home, name).unlink(missing_ok=True)


def wait_healthy(
    home: Path,
    name: str,
    healthy: Callable[[], bool],
    pid: int | None,
    timeout_s: float,
) -> None:
    """Poll ``healthy`` until it holds; fail fast, naming the log, if ``pid`` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if healthy():
            return
        if pid is not None and start_ticks(pid) is None:
            _reap(pid)
            raise ServiceError(name, "exited during start-up", str(log_file(home, name)))
        time.sleep(0.3)
    raise ServiceError(name, f"not healthy after {timeout_s:.0f} s", str(log_file(home, name)))


def stop(
    home: Path,
    name: str,
    *,
    sig: signal.Signals = signal.SIGTERM,
    timeout_s: float = 30.0,
    kill: bool = False,
) -> bool:
    """Stop ``name``'s process group: ``sig``, then SIGKILL after ``timeout_s`` (``kill``: at once).

    Waits until no process of the group is left and reaps the leader. Returns whether
    anything of it was running; a stale or recycled pid file is removed, never signalled.
    """
    pgid = recorded_group(home, name)
    if pgid is None:
        pid_file(home, name).unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL if kill else sig)
    deadline = time.monotonic() + timeout_s
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_alive(pgid):
        log.warning("%s did not stop within %.0f s; killing its process group", name, timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        while group_alive(pgid):
            time.sleep(0.1)
    # the leader may have exited after the last check: reap it so no zombie keeps the group
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, 0)
    pid_file(home, name).unlink(missing_ok=True)
    log.info("stopped %s (process group %d)", name, pgid)
    return True


@contextlib.contextmanager
def running(
    home: Path,
    name: str,
    command: list[str],
    healthy: Callable[[], bool],
    *,
    env: dict[str, str] | None = None,
    timeout_s: float = 60.0,
    sig: signal.Signals = signal.SIGTERM,
    stop_timeout_s: float = 20.0,
) -> Iterator[int]:
    """Run ``command`` for the duration of the block, once ``healthy``; yields its pid."""
    pid = start(home, name, command, env=env)
    try:
        wait_healthy(home, name, healthy, pid, timeout_s)
        yield pid
    finally:
        stop(home, name, sig=sig, timeout_s=stop_timeout_s)
