"""Real artists from HetRec 2011 Last.fm-2k: names, tags as genres, listening as popularity.

Inputs (in the ``hetrec2011-lastfm-2k`` folder under ``settings.datasets``): ``artists.dat``
(id, name), ``tags.dat`` (id, tag), ``user_taggedartists.dat`` (who tagged which artist
with what) and, when present, ``user_artists.dat`` (play counts, for popularity). Output:
``ArtistSpec`` s for :func:`streaming_api.catalog.synthetic.build_catalog`, which generates
their albums and songs. An artist's genre is its most used tag that names a genre of the
taxonomy; an artist no tag maps gets a genre drawn from its id (stable across loads).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path

from encore.db import ids
from encore.errors import DatasetError
from encore.settings import Settings
from streaming_api.catalog.synthetic import ArtistSpec
from streaming_api.catalog.taxonomy import GENRES, WORLDWIDE, genre_of_tags

FOLDER = "hetrec2011-lastfm-2k"


def hetrec_folder(settings: Settings) -> Path:
    """The HetRec lastfm-2k folder under the datasets root.

    Raises:
        DatasetError: the datasets root or the folder in it is missing.
    """
    root = settings.datasets.resolve()
    folder = root / FOLDER if root is not None else None
    if folder is None or not folder.is_dir():
        where = f"{root}/" if root is not None else "the datasets root (ENCORE_DATASETS__ROOT)"
        raise DatasetError(
            f"HetRec lastfm-2k not found: expected the folder {FOLDER}/ in {where}; set "
            "ENCORE_DATASETS__ROOT to the folder holding it"
        )
    return folder


def _rows(path: Path, columns: int) -> list[list[str]]:
    if not path.is_file():
        raise DatasetError(f"HetRec lastfm-2k file not found: expected {path}")
    # tags.dat is Latin-1, the others UTF-8: decode what is UTF-8, keep the rest readable
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.splitlines()
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < columns:
            raise DatasetError(f"{path}:{number}: expected {columns} tab-separated fields")
        rows.append(parts)
    return rows


def read_hetrec_artists(folder: Path, limit: int | None = None) -> list[ArtistSpec]:
    """The dataset's artists, most listened first (``limit`` of them when given).

    Names that fold to the same catalog id (``Beyoncé`` twice) keep the most listened one.
    """
    names = {row[0]: row[1].strip() for row in _rows(folder / "artists.dat", 2)}
    tags = {row[0]: row[1].strip() for row in _rows(folder / "tags.dat", 2)}
    tag_counts: dict[str, Counter[str]] = defaultdict(Counter)
    for row in _rows(folder / "user_taggedartists.dat", 3):
        tag = tags.get(row[2])
        if tag:
            tag_counts[row[1]][tag] += 1
    listened: Counter[str] = Counter()
    plays = folder / "user_artists.dat"
    if plays.is_file():
        for row in _rows(plays, 3):
            listened[row[1]] += int(row[2])
    order = sorted(names, key=lambda a: (-listened[a], int(a)))
    top = max(1, max(listened.values(), default=1))
    specs: list[ArtistSpec] = []
    seen: set[str] = set()
    for hetrec_id in order:
        name = names[hetrec_id]
        if not name or ids.artist_id(name) in seen:
            continue
        seen.add(ids.artist_id(name))
        rng = random.Random(f"hetrec/{hetrec_id}")
        genre = genre_of_tags(tag_counts[hetrec_id].items()) or rng.choice(list(GENRES))
        # popularity in the synthetic catalog's scale (the most listened artist is 100)
        popularity = 100.0 * max(listened[hetrec_id], 1) / top
        specs.append(ArtistSpec(name, genre, popularity, rng.choice(WORLDWIDE[:22])))
        if limit is not None and len(specs) >= limit:
            break
    return specs
