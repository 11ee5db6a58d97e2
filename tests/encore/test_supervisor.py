"""The process supervisor against real processes (no services needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from encore import supervisor
from encore.errors import ServiceError


def _alive(pid: int) -> bool:
    return supervisor.start_ticks(pid) is not None


def _wait_for(path: Path, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_start_waits_for_health_and_stop_takes_the_whole_group(tmp_path):
    grandchild_pid = tmp_path / "grandchild.pid"
    # the child starts a grandchild in the background, then reports ready
    script = f"sleep 300 & echo $! > {grandchild_pid}; echo ready; sleep 300"
    pid = supervisor.start(tmp_path, "demo", ["sh", "-c", script])
    supervisor.wait_healthy(tmp_path, "demo", grandchild_pid.exists, pid, timeout_s=10)
    grandchild = int(grandchild_pid.read_text())
    assert supervisor.running_pid(tmp_path, "demo") == pid
    pid_text, ticks = supervisor.pid_file(tmp_path, "demo").read_text().split()
    assert (int(pid_text), int(ticks)) == (pid, supervisor.start_ticks(pid))
    assert os.getpgid(pid) == pid and os.getsid(pid) == pid  # its own session
    assert os.getpgid(grandchild) == pid

    assert supervisor.stop(tmp_path, "demo", timeout_s=10)
    assert not _alive(pid) and not _alive(grandchild)
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)
    assert not supervisor.pid_file(tmp_path, "demo").exists()
    assert "ready" in supervisor.log_file(tmp_path, "demo").read_text()
    assert not supervisor.stop(tmp_path, "demo")  # nothing left to stop


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(tmp_path):
    ready = tmp_path / "ready"
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        f"open({str(ready)!r}, 'w').close(); time.sleep(300)"
    )
    pid = supervisor.start(tmp_path, "stubborn", [sys.executable, "-c", code])
    _wait_for(ready)
    started = time.monotonic()
    assert supervisor.stop(tmp_path, "stubborn", timeout_s=1.5)
    assert time.monotonic() - started >= 1.5  # SIGTERM was tried first, and ignored
    assert not _alive(pid)


def test_a_per_service_stop_signal_is_sent(tmp_path):
    got = tmp_path / "got"
    ready = tmp_path / "ready"
    code = (
        "import signal, sys, time\n"
        f"def on_int(*_): open({str(got)!r}, 'w').write('SIGINT'); sys.exit(0)\n"
        "signal.signal(signal.SIGINT, on_int)\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "time.sleep(300)\n"
    )
    supervisor.start(tmp_path, "pg-like", [sys.executable, "-c", code])
    _wait_for(ready)
    assert supervisor.stop(tmp_path, "pg-like", sig=signal.SIGINT, timeout_s=10)
    assert got.read_text() == "SIGINT"


def test_a_recycled_pid_is_never_signalled(tmp_path):
    """A pid file whose pid now names another process (other start ticks) is only removed."""
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        path = supervisor.pid_file(tmp_path, "old")
        path.parent.mkdir(parents=True)
        ticks = supervisor.start_ticks(bystander.pid)
        path.write_text(f"{bystander.pid} {ticks - 1}\n")  # recorded for an earlier process
        assert supervisor.running_pid(tmp_path, "old") is None
        assert supervisor.recorded_group(tmp_path, "old") is None
        assert not supervisor.stop(tmp_path, "old", timeout_s=1)
        assert bystander.poll() is None  # untouched
        assert not path.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_garbled_pid_file_is_not_a_running_process(tmp_path):
    path = supervisor.pid_file(tmp_path, "garbled")
    path.parent.mkdir(parents=True)
    path.write_text("not a pid\n")
    assert supervisor.running_pid(tmp_path, "garbled") is None
    assert not supervisor.stop(tmp_path, "garbled")


def test_exiting_during_start_up_fails_fast_naming_the_log(tmp_path):
    pid = supervisor.start(tmp_path, "broken", ["sh", "-c", "echo cannot bind; exit 3"])
    started = time.monotonic()
    with pytest.raises(ServiceError) as error:
        supervisor.wait_healthy(tmp_path, "broken", lambda: False, pid, timeout_s=60)
    assert time.monotonic() - started < 10  # did not wait for the timeout
    log = supervisor.log_file(tmp_path, "broken")
    assert str(error.value).startswith("broken:")
    assert str(log) in str(error.value)
    assert "cannot bind" in log.read_text()


def test_running_lasts_for_the_block(tmp_path):
    ready = tmp_path / "ready"
    command = ["sh", "-c", f"touch {ready}; exec sleep 300"]
    with supervisor.running(tmp_path, "block", command, ready.exists, timeout_s=10) as pid:
        assert _alive(pid)
    assert not _alive(pid)
    assert not supervisor.pid_file(tmp_path, "block").exists()


def test_foreground_returns_the_exit_code_and_forgets_the_pid(tmp_path):
    code = supervisor.run_foreground(tmp_path, "fg", ["sh", "-c", "exit 7"], env=dict(os.environ))
    assert code == 7
    assert not supervisor.pid_file(tmp_path, "fg").exists()
