"""Dataset loaders: the lake's bronze play events, HetRec's file format, synthetic data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp
from deltalake import write_deltalake

from encore.errors import DatasetError
from encore.settings import Settings
from encore.tables import PLAY_EVENTS
from models.datasets import file_sha256, load_dataset, load_hetrec, load_lake
from models.splits import time_split
from models.synthetic import generate


def _events(rows: list[tuple[str, str, int]]) -> pa.Table:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    columns = {name: [] for name in PLAY_EVENTS.column_names}
    for n, (user, song, minute) in enumerate(rows):
        t = start + timedelta(minutes=minute)
        values = {
            "event_id": f"e{n}",
            "user_id": user,
            "song_id": song,
            "start_time": t,
            "end_time": t + timedelta(seconds=30),
            "ms_played": 30000,
            "event_type": "play",
            "device_type": "mobile",
            "country_code": "FR",
            "schema_version": 1,
            "event_date": date(2026, 1, 1),
            "kafka_partition": 0,
            "kafka_offset": n,
            "ingested_at": t,
        }
        for name in columns:
            columns[name].append(values[name])
    return pa.Table.from_pydict(columns, schema=PLAY_EVENTS.arrow_schema())


def test_lake_counts_plays_and_records_the_delta_version(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    path = PLAY_EVENTS.path(settings)
    write_deltalake(path, _events([("u1", "s1", 0), ("u1", "s1", 1), ("u2", "s2", 2)]))
    write_deltalake(path, _events([("u2", "s1", 3)]), mode="append")
    data = load_lake(settings)
    assert data.lineage["table"] == "bronze.play_events"
    assert data.lineage["delta_version"] == 1
    assert list(data.user_ids) == ["u1", "u2"] and list(data.item_ids) == ["s1", "s2"]
    np.testing.assert_array_equal(data.user_items.toarray(), [[2, 0], [1, 1]])
    train, test, _ = time_split(data.events, data.shape, test_fraction=0.25)
    assert train.sum() == 3 and test.nnz == 1  # (u2, s1) is the only play after the cut


def test_lake_without_table_is_a_dataset_error(tmp_path) -> None:
    with pytest.raises(DatasetError, match=r"bronze\.play_events"):
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
