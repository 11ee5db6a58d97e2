"""A model trained on the lake's ``training.interactions`` names the snapshot it saw: the
MLflow run (real local tracking server) carries the table, its Delta version and the
cut-off as tags, and the whole lineage as an artifact."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from mlflow import MlflowClient

from encore.settings import Settings
from encore.tables import TRAINING_INTERACTIONS
from models.training import train

pytestmark = pytest.mark.integration


def snapshot(cutoff: date, users: int = 40, songs: int = 15, seed: int = 3) -> pa.Table:
    """A small long-tailed snapshot: each listener played a few songs, low ids more often."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for u in range(users):
        played = rng.choice(songs, size=5, replace=False, p=np.linspace(2, 1, songs) / 22.5)
        for song in played:
            first = start + timedelta(hours=int(rng.integers(0, 24 * 30)))
            rows.append(
                {
                    "cutoff_date": cutoff,
                    "user_id": f"u{u:03d}",
                    "song_id": f"s{song:02d}",
                    "plays": 2,
                    "completed": 2,
                    "skips": 0,
                    "likes": 0,
                    "weight": 2.0,
                    "first_played_at": first,
                    "last_played_at": first + timedelta(days=1),
                }
            )
    return pa.Table.from_pylist(rows, schema=TRAINING_INTERACTIONS.arrow_schema())


def test_training_run_records_table_version_and_cutoff(platform: Settings, tmp_path: Path):
    settings = platform.model_copy(
        update={"lake": platform.lake.model_copy(update={"root": str(tmp_path / "lake")})}
    )
    path = TRAINING_INTERACTIONS.path(settings)
    for cutoff in (date(2026, 1, 30), date(2026, 1, 31)):
        write_deltalake(path, snapshot(cutoff), mode="append", partition_by=["cutoff_date"])

    name = f"test-lake-{uuid.uuid4().hex[:8]}"
    result = train(settings, "pop", "lake", registered_name=name)

    uri = platform.mlflow.effective_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(result.registered.run_id)
    tags = run.data.tags
    assert tags["dataset"] == "lake" and tags["dataset_source"] == "lake"
    assert tags["lake.table"] == "training.interactions"
    assert tags["lake.path"] == path
    assert tags["lake.delta_version"] == "1"
    assert tags["lake.cutoff_date"] == "2026-01-31"
    lineage = json.loads(
        Path(client.download_artifacts(run.info.run_id, "lineage.json", str(tmp_path))).read_text()
    )
    assert (lineage["cutoff_date"], lineage["delta_version"]) == ("2026-01-31", 1)
    assert lineage["interactions"] == 40 * 5
