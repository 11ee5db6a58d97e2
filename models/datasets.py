"""Interaction datasets: users x items matrices of raw play counts, with lineage.

Three sources, one shape (:class:`InteractionDataset`):

- ``hetrec-lastfm-2k``: the HetRec 2011 Last.fm 2K files under ``settings.datasets``
  (user x artist play counts; user-given artist tags as item features). Read in place,
  never copied; lineage is the sha256 of every file read.
- ``lake``: play events from the bronze table, counted per (user, song); lineage is the
  table and its Delta version. Keeps the events for time-based splits.
- ``synthetic``: :func:`models.synthetic.generate`, the embedded default, so tests and the
  demo need no files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from encore.errors import DatasetError
from models.interactions import Events, InteractionDataset

if TYPE_CHECKING:
    from encore.settings import Settings

HETREC_NAME = "hetrec-lastfm-2k"
HETREC_FOLDER = "hetrec2011-lastfm-2k"
DATASET_NAMES = (HETREC_NAME, "synthetic", "lake")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(matrix: sp.spmatrix) -> str:
    """sha256 of a sparse matrix's structure and values: identifies evaluation data."""
    csr = sp.csr_matrix(matrix)
    csr.sort_indices()
    digest = hashlib.sha256()
    digest.update(np.asarray(csr.shape, dtype=np.int64).tobytes())
    for part in (csr.indptr, csr.indices):
        digest.update(np.asarray(part, dtype=np.int64).tobytes())
    digest.update(np.asarray(csr.data, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _read_tsv(path: Path, columns: int) -> list[list[str]]:
    """Tab-separated rows after the header; tolerant of stray encodings (artists.dat)."""
    if not path.is_file():
        raise DatasetError(f"HetRec file {path} is missing; expected the published archive")
    rows = []
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        next(handle, None)
        for line in handle:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) >= columns:
                rows.append(parts)
    return rows


def load_hetrec(settings: Settings) -> InteractionDataset:
    """HetRec lastfm-2k: user x artist play counts, artist tag features.

    Raises:
        DatasetError: the dataset folder is not configured or a file is missing/malformed.
    """
    root = settings.datasets.resolve()
    folder = root / HETREC_FOLDER if root else None
    if folder is None or not folder.is_dir():
        raise DatasetError(
            f"dataset {HETREC_NAME} expects folder {HETREC_FOLDER}/ under the datasets root "
            f"(ENCORE_DATASETS__ROOT); found {folder or 'no datasets root'}"
        )
    plays = np.asarray(
        [(int(u), int(a), float(w)) for u, a, w in _read_tsv(folder / "user_artists.dat", 3)]
    )
    if plays.size == 0:
        raise DatasetError(f"{folder / 'user_artists.dat'} has no interactions")
    names = {int(r[0]): r[1] for r in _read_tsv(folder / "artists.dat", 2) if r[0].isdigit()}
    tagged = np.asarray(
        [(int(r[1]), int(r[2])) for r in _read_tsv(folder / "user_taggedartists.dat", 3)]
    )
    tag_names = {int(r[0]): r[1] for r in _read_tsv(folder / "tags.dat", 2) if r[0].isdigit()}

    user_ids, users = np.unique(plays[:, 0].astype(np.int64), return_inverse=True)
    # artists with plays only: the catalogue we can recommend and evaluate on
    item_ids, items = np.unique(plays[:, 1].astype(np.int64), return_inverse=True)
    user_items = sp.csr_matrix(
        (plays[:, 2].astype(np.float32), (users, items)), shape=(len(user_ids), len(item_ids))
    )
    position = {int(a): i for i, a in enumerate(item_ids)}
    keep = np.fromiter((a in position for a in tagged[:, 0]), bool, len(tagged))
    tag_ids, tag_index = np.unique(tagged[keep, 1], return_inverse=True)
    rows = np.fromiter((position[a] for a in tagged[keep, 0]), np.int64, int(keep.sum()))
    # a tag's weight on an artist = how many users gave it
    item_features = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, tag_index)), shape=(len(item_ids), len(tag_ids))
    )
    files = ["user_artists.dat", "artists.dat", "user_taggedartists.dat", "tags.dat"]
    return InteractionDataset(
        name=HETREC_NAME,
        user_items=user_items,
        user_ids=user_ids,
        item_ids=item_ids,
        item_names=np.asarray([names.get(int(a), str(a)) for a in item_ids], dtype=object),
        item_features=item_features,
        feature_names=np.asarray([tag_names.get(int(t), str(t)) for t in tag_ids], dtype=object),
        lineage={
            "source": "files",
            "folder": folder.name,
            "sha256": {name: file_sha256(folder / name) for name in files},
        },
    )


def load_lake(settings: Settings, event_types: tuple[str, ...] | None = None) -> InteractionDataset:
    """Play counts per (user, song) from bronze ``play_events``, keeping the events.

    Args:
        settings: where the lake is.
        event_types: count only these event types (default: all, skips included, since a
            skip is still a play the listener chose to start).

    Raises:
        DatasetError: the table does not exist or has no events.
    """
    import polars as pl
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    from encore.tables import PLAY_EVENTS

    path = PLAY_EVENTS.path(settings)
    try:
        table = DeltaTable(path, storage_options=settings.lake.storage_options or None)
    except TableNotFoundError as error:
        raise DatasetError(
            f"lake table {PLAY_EVENTS.qualified_name} expected at {path}; not found"
        ) from error
    frame = pl.from_arrow(
        table.to_pyarrow_table(columns=["user_id", "song_id", "start_time", "event_type"])
    )
    if event_types:
        frame = frame.filter(pl.col("event_type").is_in(list(event_types)))
    if frame.height == 0:
        raise DatasetError(f"lake table {PLAY_EVENTS.qualified_name} at {path} has no events")
    user_ids, users = np.unique(frame["user_id"].to_numpy().astype(str), return_inverse=True)
    item_ids, items = np.unique(frame["song_id"].to_numpy().astype(str), return_inverse=True)
    times = frame["start_time"].dt.epoch("us").to_numpy().astype(np.float64) / 1e6
    user_items = sp.csr_matrix(
        (np.ones(len(users), np.float32), (users, items)), shape=(len(user_ids), len(item_ids))
    )
    user_items.sum_duplicates()
    return InteractionDataset(
        name="lake",
        user_items=user_items,
        user_ids=user_ids,
        item_ids=item_ids,
        events=Events(users.astype(np.int64), items.astype(np.int64), times),
        lineage={
            "source": "lake",
            "table": PLAY_EVENTS.qualified_name,
            "path": path,
            "delta_version": int(table.version()),
            "events": int(frame.height),
        },
    )


def load_dataset(name: str, settings: Settings, **params: object) -> InteractionDataset:
    """Load a dataset by name: ``hetrec-lastfm-2k``, ``synthetic`` or ``lake``."""
    if name == HETREC_NAME:
        return load_hetrec(settings)
    if name == "synthetic":
        from models.synthetic import generate

        return generate(**params)  # type: ignore[arg-type]
    if name == "lake":
        return load_lake(settings)
    raise DatasetError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
