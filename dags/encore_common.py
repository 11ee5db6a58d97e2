"""What every Encore DAG shares: how a task runs an ``encore`` command, and the defaults.

DAG files stay thin and light at parse time: no Encore package is imported here (they live
in the core environment, Airflow in its own); a task is the same ``encore ...`` command a
person would run, in the core environment, given the day of its data interval. The command's
exit status is the task's state; its output is the task's log.
"""

from __future__ import annotations

import os
import shlex
from datetime import timedelta
from pathlib import Path

from airflow.sdk import Asset, CronDataIntervalTimetable

REPO = Path(__file__).resolve().parent.parent
ENCORE = os.environ.get("ENCORE_CLI") or str(REPO / ".venv" / "bin" / "encore")
"""The core environment's ``encore``; ``ENCORE_CLI`` moves it (a container image, a venv)."""

DAY = "{{ data_interval_start | ds }}"
"""The day a daily run is for: its data interval's first day (the day that just ended)."""

DAILY = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")
"""Daily at 00:00 UTC for the day that just ended: a run's data interval is one UTC day
(late events are picked up by later builds: `encore lake build` rebuilds late days)."""

WEEKLY = CronDataIntervalTimetable("0 3 * * 0", timezone="UTC")
"""Sundays at 03:00 UTC, after the night's daily runs."""

DEFAULT_ARGS = {
    "owner": "encore",
    # ENCORE_DAG_RETRIES=0 in tests and the demo: a failure shows at once, not after back-off
    "retries": int(os.environ.get("ENCORE_DAG_RETRIES", "2")),
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(hours=1),
}

# Assets between DAGs: a consumer is scheduled when its producer's run updated them.
GOLD = Asset("encore://lake/gold")
"""Updated by lake_daily once every gold table of the day is built and checked."""
FEATURES = Asset("encore://features/online")
"""Updated by features_daily once the day's features are in the online store."""
MODELS = Asset("encore://models/champion")
"""Updated by train_recommenders after its promotion decision and index publication."""


def encore(*args: str) -> str:
    """The shell command running ``encore args...`` in the core environment (quoted; Jinja
    templates such as :data:`DAY` survive quoting and are rendered by Airflow)."""
    return shlex.join([ENCORE, *args])
