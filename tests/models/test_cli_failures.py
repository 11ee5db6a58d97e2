"""With the MLflow tracking server down, training fails in seconds with one line naming it.

Before: MLflow's HTTP client retried a refused connection for about 4.5 minutes, then
``encore train`` printed a 162-line traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from encore.errors import ServiceError
from models import create_recommender
from models.synthetic import generate


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_train_with_tracking_server_down_is_one_line_in_seconds(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")},
        "ENCORE_HOME": str(tmp_path),
        "ENCORE_DEVELOPMENT": "true",
        "ENCORE_MLFLOW__TRACKING_URI": uri,
    }
    started = time.monotonic()
    result = subprocess.run(
        [str(Path(sys.executable).with_name("encore")), "train", "als"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    print(f"encore train with MLflow down: exit {result.returncode} in {elapsed:.1f} s")
    assert result.returncode == 1, result.stderr
    assert elapsed < 60
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert uri in lines[0]
    assert "encore up mlflow" in lines[0] and "ENCORE_MLFLOW__TRACKING_URI" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_registration_when_the_server_is_gone_mid_run_fails_in_seconds() -> None:
    """No probe up front here: MLflow's own bounded retries must give up quickly."""
    from models.registry import log_and_register

    data = generate(users=40, items=50, genres=4, tags=8, seed=1)
    model = create_recommender("pop").fit(data.user_items)
    uri = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        log_and_register(
            uri,
            "encore-gone",
            model,
            data.user_items,
            data.user_ids,
            data.item_ids,
            params={},
            metrics={"ndcg@10": 0.1},
            lineage={"name": data.name},
            evaluation_fingerprint="fp",
        )
    elapsed = time.monotonic() - started
    print(f"log_and_register with MLflow gone: ServiceError in {elapsed:.1f} s")
    assert elapsed < 60
    assert uri in str(caught.value) and "unreachable" in str(caught.value)
