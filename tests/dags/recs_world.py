"""The world of the feature and training DAG tests: :mod:`tests.dags.lake_world`'s two days,
built through gold by `encore lake build` (as `lake_daily` leaves the lake), with a feature
project, a serving model and a ranker of its own (the platform's MLflow and Redis are shared
by the whole test session), built once per test process and shared by both test modules.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import date
from pathlib import Path

from encore.settings import Settings, settings_env
from tests.dags.lake_world import LakeWorld, build_lake_world

D1, D2 = date(2026, 11, 28), date(2026, 11, 29)
RUN_DATE = "2026-11-30"
"""Any logical date: both DAGs are asset-triggered and read their day from the lake."""
ENCORE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "encore"

_built: dict[str, LakeWorld] = {}


def recs_world(airflow_settings: Settings, root: Path) -> LakeWorld:
    """The world (built on first call, under ``root``)."""
    if "world" in _built:
        return _built["world"]
    world = build_lake_world(airflow_settings, root / "lake", [D1, D2], database="recs_world")
    tag = uuid.uuid4().hex[:8]
    settings = world.settings.model_copy(
        update={
            "features": world.settings.features.model_copy(
                update={"repo": str(root / "features"), "project": f"dags{tag}"}
            ),
            "serving": world.settings.serving.model_copy(
                update={"model_name": f"dags-als-{tag}", "ranker_name": f"dags-ranker-{tag}"}
            ),
        }
    )
    stages = [arg for stage in ("dims", "silver", "gold") for arg in ("--stage", stage)]
    encore(settings, "lake", "build", "--from", str(D1), "--to", str(D2), *stages)
    _built["world"] = LakeWorld(settings, world.days, world.events)
    return _built["world"]


def encore(settings: Settings, *args: str, timeout: float = 600) -> str:
    """``encore args...`` as a person runs it with ``settings``; its stdout (exit 0 asserted)."""
    done = subprocess.run(
        [str(ENCORE), *args],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"encore {' '.join(args)}:\n{done.stderr[-4000:]}"
    return done.stdout
