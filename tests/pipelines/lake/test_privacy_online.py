"""``encore privacy forget`` when Redis (the feature store's online copy) is down: the lake's
part is done and logged first, the command fails with one line naming Redis and the rerun,
and the rerun (idempotent) finishes the erasure once Redis is back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from encore.cli import app
from encore.settings import Settings, get_settings, settings_env
from encore.tables import LISTENER_ACTIVITY
from features import store
from pipelines.lake import privacy
from tests.conftest import free_port
from tests.features.test_store import DAY2, known_at, online, write_two_days
from tests.pipelines.lake.conftest import read_rows

LISTENER = "u1"  # the listener test_store's rows describe


@pytest.fixture()
def settings(platform: Settings, tmp_path: Path) -> Settings:
    """The platform's Redis; a lake, feature repo and Feast project of the test's own."""
    return platform.model_copy(
        update={
            "lake": platform.lake.model_copy(
                update={
                    "root": str(tmp_path / "lake"),
                    "pseudonym_secret": SecretStr("a-test-pseudonym-secret-of-at-least-32-bytes"),
                }
            ),
            "features": platform.features.model_copy(
                update={"repo": str(tmp_path / "features"), "project": f"t{uuid.uuid4().hex[:8]}"}
            ),
        }
    )


def served_plays(settings: Settings) -> list:
    return online(settings, LISTENER)["listener_activity__plays_7d"]


def forget_command(settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Result:
    """``encore privacy forget`` as an operator runs it, its settings from the environment
    (in this process: Feast is imported already, a child would spend seconds on it)."""
    for name, value in {**settings_env(settings), "ENCORE_REDIS__URL": redis_url}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(
            app, ["privacy", "forget", "--user", LISTENER], env={"COLUMNS": "200"}
        )
    finally:
        get_settings.cache_clear()


@pytest.mark.integration
def test_forget_with_redis_down_logs_the_lake_part_fails_in_one_line_and_reruns(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_two_days(settings)
    store.apply(settings)
    store.materialize(settings, end=known_at(DAY2) + timedelta(hours=1))
    lake_rows = [r for r in read_rows(settings, LISTENER_ACTIVITY) if r["user_id"] == LISTENER]
    assert lake_rows and served_plays(settings) == [9]

    closed_port = free_port()
    down = forget_command(settings, f"redis://localhost:{closed_port}/0", monkeypatch)

    assert down.exit_code == 1, down.stderr
    error_lines = [line for line in down.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, down.stderr  # one line, no traceback
    assert "Traceback" not in down.stderr
    (error,) = error_lines
    assert error.startswith("error: Redis: unreachable") and str(closed_port) in error
    assert "encore privacy forget` again" in error
    # the lake's part is done and recorded; the online copy still serves the listener
    assert not [r for r in read_rows(settings, LISTENER_ACTIVITY) if r["user_id"] == LISTENER]
    (logged,) = privacy.erasures(settings)
    assert logged["request_id"] in error
    assert logged["rows_deleted"] == len(lake_rows)
    assert privacy.ONLINE_FEATURES not in logged["tables_touched"]
    assert served_plays(settings) == [9]

    rerun = privacy.forget(settings, LISTENER)  # Redis answers again

    assert rerun.rows_deleted == 0 and rerun.online_features_deleted > 0
    assert rerun.tables_touched == [privacy.ONLINE_FEATURES]
    assert served_plays(settings) == [None]
    assert len(privacy.erasures(settings)) == 2
