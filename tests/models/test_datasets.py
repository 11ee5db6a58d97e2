"""Dataset loaders: the lake's training interactions, HetRec's file format, synthetic data."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from deltalake import write_deltalake

from encore.errors import DatasetError
from encore.settings import Settings
from encore.tables import TRAINING_INTERACTIONS
from models.datasets import file_sha256, load_dataset, load_hetrec, load_lake
from models.splits import time_split
from models.synthetic import generate


def _interactions(cutoff: date, rows: list[tuple[str, str, float, int]]) -> list[dict]:
    """training.interactions rows: (user, song, weight, first play's day in January)."""
    return [
        {
            "cutoff_date": cutoff,
            "user_id": user,
            "song_id": song,
            "plays": 1,
            "completed": 1,
            "skips": 0,
            "likes": 0,
            "weight": weight,
            "first_played_at": datetime(2026, 1, day, tzinfo=UTC),
            "last_played_at": datetime(2026, 1, day, tzinfo=UTC),
        }
        for user, song, weight, day in rows
    ]


def _write(settings: Settings, rows: list[dict]) -> None:
    write_deltalake(
        TRAINING_INTERACTIONS.path(settings),
        pa.Table.from_pylist(rows, schema=TRAINING_INTERACTIONS.arrow_schema()),
        mode="append",
        partition_by=list(TRAINING_INTERACTIONS.partition_by),
    )


def test_lake_reads_the_latest_interactions_snapshot_with_its_lineage(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    first, second = date(2026, 1, 3), date(2026, 1, 4)
    _write(settings, _interactions(first, [("u1", "s1", 1.0, 1), ("u2", "s2", 2.0, 2)]))
    rows = [("u1", "s1", 3.6, 1), ("u2", "s2", 2.0, 2), ("u2", "s1", 0.1, 4), ("u3", "s3", 1, 4)]
    _write(settings, _interactions(second, rows))

    data = load_lake(settings)
    assert data.lineage == {
        "source": "lake",
        "table": "training.interactions",
        "path": TRAINING_INTERACTIONS.path(settings),
        "delta_version": 1,
        "cutoff_date": "2026-01-04",
        "interactions": 4,
    }
    assert list(data.user_ids) == ["u1", "u2", "u3"]
    assert list(data.item_ids) == ["s1", "s2", "s3"]
    np.testing.assert_allclose(
        data.user_items.toarray(), [[3.6, 0, 0], [0.1, 2.0, 0], [0, 0, 1.0]], rtol=1e-6
    )
    # one event per pair at its first play: the pairs first played on the 4th are the test
    train, test, _ = time_split(data.events, data.shape, test_fraction=0.5)
    np.testing.assert_array_equal(train.toarray(), [[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(test.toarray(), [[0, 0, 0], [1, 0, 0], [0, 0, 1]])

    older = load_dataset("lake", settings, cutoff="2026-01-03")
    assert older.lineage["cutoff_date"] == "2026-01-03"
    np.testing.assert_allclose(older.user_items.toarray(), [[1.0, 0], [0, 2.0]])
    with pytest.raises(DatasetError, match=r"no cutoff_date 2026-01-05.*2026-01-03, 2026-01-04"):
        load_lake(settings, cutoff=date(2026, 1, 5))


def test_lake_without_table_is_a_dataset_error(tmp_path) -> None:
    with pytest.raises(DatasetError, match=r"training\.interactions"):
        load_lake(Settings(home=tmp_path))


def _write_hetrec(folder) -> None:
    folder.mkdir(parents=True)
    (folder / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n2\t51\t10\n2\t52\t5\n3\t51\t7\n"
    )
    # a Latin-1 byte in a name must not break the loader
    (folder / "artists.dat").write_bytes(
        b"id\tname\turl\tpictureURL\n51\tBj\xf6rk\tu\tp\n52\tMuse\tu\tp\n"
    )
    (folder / "tags.dat").write_text("tagID\ttagValue\n1\trock\n2\tpop\n")
    (folder / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\n2\t52\t1\t1\t1\t2009\n3\t52\t1\t1\t1\t2009\n"
        "3\t51\t2\t1\t1\t2009\n3\t99\t2\t1\t1\t2009\n"
    )


def test_hetrec_format(tmp_path) -> None:
    _write_hetrec(tmp_path / "hetrec2011-lastfm-2k")
    data = load_hetrec(Settings(datasets={"root": str(tmp_path)}))
    np.testing.assert_array_equal(data.user_items.toarray(), [[10, 5], [7, 0]])
    assert list(data.item_ids) == [51, 52]
    assert data.item_names[0].startswith("Bj") and data.item_names[1] == "Muse"
    # artist 99 has no plays: its tag is dropped; rock was given twice to 52
    np.testing.assert_array_equal(data.item_features.toarray(), [[0, 1], [2, 0]])
    assert list(data.feature_names) == ["rock", "pop"]
    assert data.lineage["sha256"]["user_artists.dat"] == file_sha256(
        tmp_path / "hetrec2011-lastfm-2k" / "user_artists.dat"
    )


def test_hetrec_missing_is_a_dataset_error(tmp_path) -> None:
    with pytest.raises(DatasetError, match="hetrec2011-lastfm-2k"):
        load_dataset("hetrec-lastfm-2k", Settings(datasets={"root": str(tmp_path)}))


def test_synthetic_is_long_tailed_and_reproducible() -> None:
    a, b = generate(users=300, items=500, seed=1), generate(users=300, items=500, seed=1)
    assert (a.user_items != b.user_items).nnz == 0
    listeners = np.sort(np.diff(a.user_items.tocsc().indptr))[::-1]
    top = listeners[: len(listeners) // 10].sum() / listeners.sum()
    assert top > 0.3, "the top 10% of artists should hold a large share of listeners"
    assert a.item_features.shape == (500, 200)
    # the events add up to the matrix (each pair's plays, capped at 20 per pair)
    events = sp.csr_matrix(
        (np.ones(len(a.events.user_index)), (a.events.user_index, a.events.item_index)),
        shape=a.shape,
    )
    expected = a.user_items.copy()
    expected.data = np.minimum(expected.data, 20)
    assert abs(events - expected).sum() == 0
    start = a.events.timestamp.min()
    assert a.events.timestamp.max() - start <= 90 * 86400, "events span at most 90 days"
