"""Interaction datasets: users x items matrices of play counts or weights, with lineage.

Three sources, one shape (:class:`InteractionDataset`):

- ``hetrec-lastfm-2k``: the HetRec 2011 Last.fm 2K files under ``settings.datasets``
  (user x artist play counts; user-given artist tags as item features). Read in place,
  never copied; lineage is the sha256 of every file read.
- ``lake``: ``training.interactions`` (pipelines/lake/training.py), one snapshot per
  cut-off: the latest, or the one asked for. The matrix holds each pair's ``weight``
  (completed plays, skips and likes weighed there); lineage is the table, its path, its
  Delta version and the cut-off. Events for time-based splits: one per pair, at its first
  play (see :func:`load_lake`).
- ``synthetic``: :func:`models.synthetic.generate`, the embedded default, so tests and the
  demo need no files.
"""

from __future__ import annotations

import hashlib
from datetime import date
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


def load_lake(settings: Settings, cutoff: date | str | None = None) -> InteractionDataset:
    """Weighted (user, song) interactions of one ``training.interactions`` snapshot.

    Args:
        settings: where the lake is.
        cutoff: the snapshot's ``cutoff_date`` (a date or ``YYYY-MM-DD``); default: the
            latest the table holds.

    The time split needs event times. The snapshot keeps one row per pair, so the events
    are one per pair at ``first_played_at``: a time split then puts in test exactly the
    pairs first played after its cut (discoveries, which is what ``time_split`` scores)
    and counts each earlier pair once in train. Train is binary there, not weighted: a
    pair's weight includes plays after the cut, and using it would leak them. Reading
    ``silver.plays`` for play-level times would cost a scan of all history per training.

    Raises:
        DatasetError: the table does not exist, or has no such (or no) snapshot.
    """
    import polars as pl

    from encore.delta import open_delta, read_delta
    from encore.tables import TRAINING_INTERACTIONS

    name = TRAINING_INTERACTIONS.qualified_name
    path = TRAINING_INTERACTIONS.path(settings)
    table = open_delta(settings, TRAINING_INTERACTIONS)
    if table is None:
        raise DatasetError(
            f"lake table {name} expected at {path}; not found (run `encore lake build`)"
        )
    cutoffs = sorted(
        {date.fromisoformat(p["cutoff_date"]) for p in table.partitions() if p["cutoff_date"]}
    )
    if not cutoffs:
        raise DatasetError(f"lake table {name} at {path} has no snapshot")
    chosen = cutoffs[-1] if cutoff is None else _as_date(cutoff)
    if chosen not in cutoffs:
        raise DatasetError(
            f"lake table {name} has no cutoff_date {chosen}; "
            f"it holds {', '.join(str(c) for c in cutoffs)}"
        )
    columns = ["user_id", "song_id", "weight", "first_played_at"]
    frame = pl.from_arrow(read_delta(table, columns, [("cutoff_date", "=", chosen)])).filter(
        pl.col("weight") > 0
    )
    if frame.height == 0:
        raise DatasetError(f"lake table {name} has no interactions for cutoff_date {chosen}")
    user_ids, users = np.unique(frame["user_id"].to_numpy().astype(str), return_inverse=True)
    item_ids, items = np.unique(frame["song_id"].to_numpy().astype(str), return_inverse=True)
    times = frame["first_played_at"].dt.epoch("us").to_numpy().astype(np.float64) / 1e6
    user_items = sp.csr_matrix(
        (frame["weight"].to_numpy().astype(np.float32), (users, items)),
        shape=(len(user_ids), len(item_ids)),
    )
    return InteractionDataset(
        name="lake",
        user_items=user_items,
        user_ids=user_ids,
        item_ids=item_ids,
        events=Events(users.astype(np.int64), items.astype(np.int64), times),
        lineage={
            "source": "lake",
            "table": name,
            "path": path,
            "delta_version": int(table.version()),
            "cutoff_date": chosen.isoformat(),
            "interactions": int(frame.height),
        },
    )


def _as_date(value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DatasetError(f"cutoff {value!r}: expected a date, YYYY-MM-DD") from None


def load_dataset(name: str, settings: Settings, **params: object) -> InteractionDataset:
    """Load a dataset by name: ``hetrec-lastfm-2k``, ``synthetic`` or ``lake``.

    ``params``: the generator's for ``synthetic``; ``cutoff`` for ``lake``.
    """
    if name == HETREC_NAME:
        return load_hetrec(settings)
    if name == "synthetic":
        from models.synthetic import generate

        return generate(**params)  # type: ignore[arg-type]
    if name == "lake":
        return load_lake(settings, cutoff=params.get("cutoff"))  # type: ignore[arg-type]
    raise DatasetError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
