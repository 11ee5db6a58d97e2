"""Helpers shared by the model benchmarks: medians, result files, a fixed-factors model."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.base import Recommender

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Wall seconds of ``repeats`` calls of ``fn`` and the last result."""
    seconds, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def median(values: list[float]) -> float:
    return statistics.median(values)


def save(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the machine's description."""
    import os

    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "load_average_at_end": os.getloadavg(),
        },
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=float))
    # figures on a loaded machine are not comparable: say what the load was
    one, five, fifteen = payload["machine"]["load_average_at_end"]
    print(f"load average at end: {one:.2f} {five:.2f} {fifteen:.2f}; saved {path}")
    return path


class FixedFactors(Recommender):
    """A recommender over given user and item vectors (e.g. Spark MLlib's)."""

    name = "fixed-factors"

    def __init__(self, users: np.ndarray, items: np.ndarray) -> None:
        super().__init__()
        self._users, self._items = users, items
        self.n_users, self.n_items, self.fitted = len(users), len(items), True

    def fit(self, user_items: sp.csr_matrix, item_features=None, show_progress=False):
        return self

    def score(self, userids: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return self._users[userids] @ self._items.T

    @property
    def item_factors(self) -> np.ndarray:
        return self._items
