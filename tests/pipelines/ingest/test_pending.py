"""Rows pending for bronze, read from the sink's commit log: what "caught up" waits for."""

from __future__ import annotations

import json
from pathlib import Path

from encore.settings import Settings
from pipelines.ingest import control
from pipelines.ingest.state import commits_log


def write_log(settings: Settings, entries: list[dict]) -> None:
    path = commits_log(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))


def test_a_batch_line_tells_what_is_pending_and_a_commit_clears_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert control.pending_rows(settings) == {}
    write_log(settings, [{"sink": "batch", "lane": 0, "pending_rows": 30}])
    assert control.pending_rows(settings) == {0: 30}  # a one-line log counts too
    write_log(
        settings,
        [
            {"sink": "batch", "lane": 0, "pending_rows": 30},
            {"sink": "batch", "lane": 1, "pending_rows": 7},
            {"sink": "bronze", "lane": 0, "rows": 30},
        ],
    )
    assert control.pending_rows(settings) == {0: 0, 1: 7}


def test_only_the_tail_of_a_long_log_is_read(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    old = [{"sink": "batch", "lane": 0, "pending_rows": 1, "pad": "x" * 500}] * 2000
    write_log(settings, [*old, {"sink": "bronze", "lane": 0, "rows": 1}])
    assert control.pending_rows(settings) == {0: 0}
