"""The ``encore`` command: parts plug in through entry points; output stays readable."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from encore import parts, supervisor
from encore.settings import REPO_ROOT, settings_env
from tests.conftest import free_port, platform_env

ENCORE = str(Path(sys.executable).parent / "encore")
PART_PACKAGES = {
    "streaming_api",
    "pipelines",
    "models",
    "serving",
    "features",
    "dags",
    "dashboards",
}


def encore(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [ENCORE, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def test_help_lists_the_commands_of_every_installed_part():
    assert {point.name for point in entry_points(group=parts.GROUP)} >= {
        "models",
        "pipelines",
        "streaming_api",
    }
    result = encore("--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    commands = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ")}
    core = {"up", "down", "status", "logs", "smoke", "demo", "urls"}
    from_parts = {"train", "evaluate", "simulate", "api", "ingest"}
    assert core | from_parts <= commands, commands


def test_demo_steps_come_from_the_parts_in_their_order():
    steps = parts.demo_steps(parts.load_parts())
    assert [step.order for step in steps] == sorted(step.order for step in steps)
    assert any("Flink" in step.title for step in steps)
    assert any("ALS" in step.title for step in steps)


def test_the_core_imports_no_part():
    """Import every module of ``encore`` with no parts installed: no part package loads."""
    code = textwrap.dedent(
        """
        import importlib, importlib.metadata, pkgutil, sys
        real = importlib.metadata.entry_points
        importlib.metadata.entry_points = lambda **kw: (
            [] if kw.get("group") == "encore.parts" else real(**kw)
        )
        import encore
        for module in pkgutil.walk_packages(encore.__path__, "encore."):
            if module.name not in ("encore.flink_smoke",):  # runs in the Flink venv
                importlib.import_module(module.name)
        print(sorted({name.split(".")[0] for name in sys.modules}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
    assert "encore" in loaded
    assert not loaded & PART_PACKAGES, loaded & PART_PACKAGES


def test_no_module_of_the_core_names_a_part_in_an_import():
    offenders = []
    for path in (REPO_ROOT / "encore").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] in PART_PACKAGES
            ]
    assert offenders == []


def test_start_up_does_not_import_engines_or_clients():
    code = (
        "import sys, encore.cli;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'kafka', 'mlflow', 'pyspark', 'pyarrow', 'pyflink', 'faiss', 'deltalake', 'polars'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture()
def test_part(tmp_path):
    """A part installed for real: a module and its dist-info with an ``encore.parts`` entry."""
    site = tmp_path / "site"
    site.mkdir()
    port = free_port()
    (site / "encore_testpart.py").write_text(
        textwrap.dedent(
            f"""
            import sys

            from encore.parts import Part
            from encore.services import Service, port_open

            PORT = {port}
            ECHO = Service(
                "echo",
                address=lambda s: f"http://127.0.0.1:{{PORT}}",
                command=lambda s: [
                    sys.executable, "-m", "http.server", str(PORT), "--bind", "127.0.0.1"
                ],
                healthy=lambda s: port_open(PORT),
                start_timeout_s=30,
            )


            def register(app):
                @app.command("echo-hello")
                def hello():
                    print("hello from a test part")


            PART = Part("testpart", commands=register, services=(ECHO,))
            """
        )
    )
    dist = site / "encore_testpart-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: encore-testpart\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[encore.parts]\ntestpart = encore_testpart:PART\n")
    home = tmp_path / "home"
    home.mkdir()
    env = platform_env(home) | {"PYTHONPATH": f"{site}{os.pathsep}{REPO_ROOT}"}
    yield env, port
    encore("down", "echo", env=env)


def _row(status_stdout: str, name: str) -> list[str]:
    for line in status_stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no {name} row in:\n{status_stdout}")


def test_a_part_adds_a_service_that_up_status_logs_and_down_handle(test_part):
    env, port = test_part
    env = env | {"COLUMNS": "200"}
    assert "hello from a test part" in encore("echo-hello", env=env).stdout

    before = encore("status", env=env)
    assert _row(before.stdout, "echo")[1:4] == ["-", "-", f"http://127.0.0.1:{port}"]

    started = encore("up", "echo", env=env)
    assert started.returncode == 0, started.stderr
    assert "echo healthy" in started.stderr
    row = _row(encore("status", env=env).stdout, "echo")
    assert row[1] == "yes" and row[2].isdigit()
    pid = int(row[2])
    again = encore("up", "echo", env=env)  # idempotent: the same process
    assert again.returncode == 0 and "started echo" not in again.stderr
    assert _row(encore("status", env=env).stdout, "echo")[2] == str(pid)
    log = encore("logs", "echo", env=env)
    assert log.returncode == 0 and "echo.log" in log.stderr

    stopped = encore("down", "echo", env=env)
    assert stopped.returncode == 0 and "stopped echo" in stopped.stderr
    assert supervisor.start_ticks(pid) is None  # gone (at most a zombie of init)
    assert _row(encore("status", env=env).stdout, "echo")[1] == "-"

    # `encore down` with no names stops the parts' services too
    assert encore("up", "echo", env=env).returncode == 0
    pid = int(_row(encore("status", env=env).stdout, "echo")[2])
    everything = encore("down", env=env)
    assert everything.returncode == 0 and "stopped echo" in everything.stderr
    assert supervisor.start_ticks(pid) is None  # gone (at most a zombie of init)


def test_an_unknown_service_is_an_error_naming_the_known_ones(test_part):
    env, _ = test_part
    result = encore("up", "nosuch", env=env)
    assert result.returncode == 1
    assert "nosuch" in result.stderr and "echo" in result.stderr and "kafka" in result.stderr


@pytest.mark.integration
def test_library_chatter_goes_to_the_log_file_unless_verbose(platform):
    """`encore ingest status` makes kafka-python warn ("group_id is None"): the terminal does
    not show it, logs/encore.log does, and --verbose shows it too."""
    env = settings_env(platform)
    log = platform.home / "logs" / "encore.log"
    log.unlink(missing_ok=True)
    quiet = encore("ingest", "status", env=env)
    assert "bronze offset" in quiet.stdout  # the command did its work
    output = quiet.stdout + quiet.stderr
    assert "group_id is None" not in output
    assert "kafka." not in output and "WARNING" not in output, output
    assert "group_id is None" in log.read_text()

    loud = encore("--verbose", "ingest", "status", env=env)
    assert "group_id is None" in loud.stdout + loud.stderr
