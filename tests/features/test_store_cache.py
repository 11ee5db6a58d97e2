"""``features.store.feature_store``: one open store per repo folder while its
``feature_store.yaml`` stays the same; no services needed (a store opens its stores lazily)."""

from __future__ import annotations

from pathlib import Path

from encore.settings import Settings
from features import store


def repo_settings(tmp_path: Path, repo: str, project: str = "encore") -> Settings:
    return Settings(home=tmp_path, features={"repo": str(tmp_path / repo), "project": project})


def test_the_same_settings_reuse_the_open_store_and_leave_the_file_alone(tmp_path: Path):
    settings = repo_settings(tmp_path, "features")
    first = store.feature_store(settings)
    config = settings.features_repo / store.CONFIG_FILE
    written = config.stat().st_mtime_ns
    assert config.read_text() == store.config_text(settings)

    again = store.feature_store(settings.model_copy(deep=True))  # equal, not the same object
    assert again is first
    assert config.stat().st_mtime_ns == written


def test_changed_settings_another_repo_or_a_lost_file_open_a_new_store(tmp_path: Path):
    settings = repo_settings(tmp_path, "features")
    first = store.feature_store(settings)

    other_project = repo_settings(tmp_path, "features", project="encore_b")
    renamed = store.feature_store(other_project)
    assert renamed is not first and renamed.project == "encore_b"
    config = other_project.features_repo / store.CONFIG_FILE
    assert config.read_text() == store.config_text(other_project)

    elsewhere = repo_settings(tmp_path, "features-2")
    assert store.feature_store(elsewhere) is not renamed
    assert store.feature_store(other_project) is renamed  # each folder keeps its own

    config.unlink()  # someone cleaned the repo: the file comes back with a fresh store
    reopened = store.feature_store(other_project)
    assert reopened is not renamed and config.read_text() == store.config_text(other_project)
