"""Checkpoints are kept per state version: a job whose graph or bronze columns changed never
tries to restore state Flink would refuse (it would loop on a StateMigrationException)."""

from __future__ import annotations

from pathlib import Path

from encore.settings import Settings
from encore.tables import PLAY_EVENTS
from pipelines.ingest import control, state


def checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "_metadata").write_bytes(b"x")
    return folder


def test_only_this_state_versions_checkpoints_are_restored_and_kept(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    root = state.checkpoints_root(settings)
    old_layout = checkpoint(root / "0a1b2c" / "chk-9")  # before versions existed
    other_version = checkpoint(root / "state-000000000000" / "job1" / "chk-12")
    assert control.latest_checkpoint(settings) is None  # neither is ours

    ours = checkpoint(state.checkpoints_dir(settings) / "job2" / "chk-3")
    assert control.latest_checkpoint(settings) == ours
    control.prune_checkpoints(settings, ours)
    assert ours.exists() and not old_layout.exists() and not other_version.exists()


def test_the_version_follows_bronzes_columns() -> None:
    before = state.state_version()
    extra = PLAY_EVENTS.columns[-1]
    renamed = type(extra)(f"{extra.name}_x", extra.dtype, extra.nullable)
    columns = PLAY_EVENTS.columns
    try:
        object.__setattr__(PLAY_EVENTS, "columns", (*columns[:-1], renamed))
        assert state.state_version() != before
    finally:
        object.__setattr__(PLAY_EVENTS, "columns", columns)
    assert state.state_version() == before


def test_the_version_follows_the_job_graph(monkeypatch) -> None:
    """A new job shape (its operators and their state) never restores an old one's checkpoint."""
    before = state.state_version()
    monkeypatch.setattr(state, "JOB_GRAPH", "raw-micro-batches-v3")
    assert state.state_version() != before
