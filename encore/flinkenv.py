"""Running code in the Flink environment (a separate venv, see infra/envs/flink).

PyFlink and pyspark cannot share a venv, so Flink jobs run as ``python -m <module>`` under
``settings.flink_python`` with the checkout on ``PYTHONPATH``. The job reads the same
``ENCORE_*`` settings from the environment it inherits.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from encore.errors import ConfigurationError
from encore.settings import REPO_ROOT, Settings, settings_env


def flink_python(settings: Settings) -> Path:
    python = settings.flink_python
    if not python.exists():
        raise ConfigurationError(f"the Flink environment is missing ({python}); run `make setup`")
    return python


def flink_env(settings: Settings) -> dict[str, str]:
    """The child environment: ours, plus the checkout on PYTHONPATH and settings made explicit."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(settings_env(settings))
    env.setdefault("JAVA_TOOL_OPTIONS", "-Xss2m")
    return env


def flink_command(settings: Settings, module: str, *args: str) -> list[str]:
    return [str(flink_python(settings)), "-m", module, *args]


def run_flink_module(
    settings: Settings,
    module: str,
    *args: str,
    timeout_s: float | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` in the Flink environment and wait for it."""
    return subprocess.run(
        flink_command(settings, module, *args),
        env=flink_env(settings) | (extra_env or {}),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
