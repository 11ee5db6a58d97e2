"""Loading the catalog into PostgreSQL: bulk, idempotent upserts by natural key.

Input: ``Settings`` (the database, ``settings.catalog`` defaults, ``settings.datasets`` for
HetRec) and a source: ``synthetic`` (:mod:`.synthetic`) or ``hetrec-lastfm-2k``
(:mod:`.hetrec`). Output: artists, albums and songs rows, and a ``LoadReport``.

Each batch of a few thousand artists is COPY'd into temporary tables, then moved with
``INSERT ... SELECT ... ON CONFLICT (id) DO UPDATE ... WHERE <row differs>``: ids are hashes
of natural keys (``encore.db.ids``), so a reload updates in place, and an unchanged row is
not written at all (its ``updated_at`` stays). Rows are never deleted: a smaller reload
leaves the extra artists in place. ``songs.hls_manifest`` belongs to content ingestion and
is never touched here, nor the
``duration_ms`` of a song whose media is ingested (the decoded audio's).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from encore.errors import ConfigurationError, ServiceError
from encore.settings import Settings
from streaming_api.catalog.synthetic import SONG_COLUMNS, ArtistSpec, CatalogBatch, build_catalog

SYNTHETIC = "synthetic"
HETREC_LASTFM_2K = "hetrec-lastfm-2k"
SOURCES = (SYNTHETIC, HETREC_LASTFM_2K)
BATCH_ARTISTS = 2_000

_TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS load_artists (
    artist_id text, name text, bio text, image_url text, popularity float8
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS load_albums (
    album_id text, artist_id text, title text, release_year int2, cover_art_url text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS load_songs (
    song_id text, title text, artist_id text, album_id text, track_number int2, genre text,
    duration_ms int4, lyrics_url text, release_date date, explicit bool, territories text,
    popularity float8
) ON COMMIT DELETE ROWS;
"""

_COLUMNS = {
    "artists": ("artist_id", "name", "bio", "image_url", "popularity"),
    "albums": ("album_id", "artist_id", "title", "release_year", "cover_art_url"),
    "songs": SONG_COLUMNS,
}
_CASTS = {"territories": "territories::varchar(2)[]"}
# Once a song's media is ingested, its duration is the decoded audio's (content ingestion
# owns it): a reload keeps it, or every reload would "update" it back to the generated one.
_KEPT = {
    "duration_ms": "CASE WHEN {table}.hls_manifest IS NULL THEN EXCLUDED.{c} ELSE {table}.{c} END"
}


def _upsert_sql(table: str) -> str:
    key, *rest = _COLUMNS[table]
    columns = ", ".join(_COLUMNS[table])
    selected = ", ".join(_CASTS.get(c, c) for c in _COLUMNS[table])
    new_values = [_KEPT.get(c, "EXCLUDED.{c}").format(table=table, c=c) for c in rest]
    updates = ", ".join(f"{c} = {value}" for c, value in zip(rest, new_values, strict=True))
    old = ", ".join(f"{table}.{c}" for c in rest)
    new = ", ".join(new_values)
    return (
        f"INSERT INTO {table} ({columns}, created_at, updated_at) "
        f"SELECT {selected}, now(), now() FROM load_{table} "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}, updated_at = now() "
        f"WHERE ({old}) IS DISTINCT FROM ({new}) "
        "RETURNING (xmax = 0) AS inserted"
    )


@dataclass
class TableCounts:
    rows: int = 0
    """Rows the load wrote or found unchanged (the source's rows)."""
    inserted: int = 0
    updated: int = 0

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated


@dataclass
class LoadReport:
    """What a load did, table by table."""

    source: str
    artists: TableCounts = field(default_factory=TableCounts)
    albums: TableCounts = field(default_factory=TableCounts)
    songs: TableCounts = field(default_factory=TableCounts)
    elapsed_s: float = 0.0

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """``(table, rows, inserted, updated, unchanged)`` for a summary table."""
        return [
            (name, f"{c.rows:,}", f"{c.inserted:,}", f"{c.updated:,}", f"{c.unchanged:,}")
            for name, c in (
                ("artists", self.artists),
                ("albums", self.albums),
                ("songs", self.songs),
            )
        ]


def catalog_artists(
    settings: Settings, source: str, artists: int | None, seed: int
) -> list[ArtistSpec]:
    """The artists ``source`` gives: ``artists`` of them (synthetic default: the setting's;
    HetRec default: all, most listened first).

    Raises:
        ConfigurationError: an unknown source.
        DatasetError: the HetRec folder or one of its files is missing.
    """
    if source == SYNTHETIC:
        from streaming_api.catalog.synthetic import synthetic_artists

        return synthetic_artists(artists or settings.catalog.artists, seed)
    if source == HETREC_LASTFM_2K:
        from streaming_api.catalog.hetrec import hetrec_folder, read_hetrec_artists

        return read_hetrec_artists(hetrec_folder(settings), limit=artists)
    raise ConfigurationError(f"unknown catalog source {source!r}; known: {', '.join(SOURCES)}")


def _copy(cursor, table: str, rows: list[tuple]) -> None:  # type: ignore[no-untyped-def]
    with cursor.copy(f"COPY load_{table} ({', '.join(_COLUMNS[table])}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _write_batch(connection, batch: CatalogBatch, report: LoadReport) -> None:  # type: ignore[no-untyped-def]
    with connection.transaction(), connection.cursor() as cursor:
        for table in ("artists", "albums", "songs"):
            rows = getattr(batch, table)
            _copy(cursor, table, rows)
            cursor.execute(_upsert_sql(table))
            changed = [inserted for (inserted,) in cursor.fetchall()]
            counts: TableCounts = getattr(report, table)
            counts.rows += len(rows)
            counts.inserted += sum(changed)
            counts.updated += len(changed) - sum(changed)


def load_catalog(
    settings: Settings,
    source: str = SYNTHETIC,
    artists: int | None = None,
    songs_per_artist: int | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LoadReport:
    """Create or update the catalog from ``source``; a second identical call changes nothing.

    Defaults come from ``settings.catalog``. ``progress(artists_done, artists_total)`` is
    called after each batch.

    Raises:
        ConfigurationError: an unknown source, a non-positive count, or a database without
            the catalog tables.
        DatasetError: the HetRec folder or one of its files is missing.
        ServiceError: PostgreSQL is unreachable.
    """
    import psycopg

    started = time.monotonic()
    seed = settings.catalog.seed if seed is None else seed
    songs_per_artist = songs_per_artist or settings.catalog.songs_per_artist
    if (artists is not None and artists < 1) or songs_per_artist < 1:
        raise ConfigurationError(
            f"artists and songs per artist must be positive, got {artists} and {songs_per_artist}"
        )
    specs = catalog_artists(settings, source, artists, seed)
    report = LoadReport(source=source)
    batches: Iterator[CatalogBatch] = build_catalog(specs, songs_per_artist, seed, BATCH_ARTISTS)
    try:
        connection = psycopg.connect(settings.postgres.effective_dsn, autocommit=True)
    except psycopg.OperationalError as error:
        raise ServiceError("postgres", "unreachable: " + " ".join(str(error).split())) from None
    with connection:
        if connection.execute("SELECT to_regclass('songs')").fetchone() == (None,):
            raise ConfigurationError("the database has no catalog tables: run `encore db upgrade`")
        connection.execute(_TEMP_TABLES)
        done = 0
        for batch in batches:
            _write_batch(connection, batch, report)
            done += len(batch.artists)
            if progress is not None:
                progress(done, len(specs))
        connection.execute("ANALYZE artists, albums, songs")
    report.elapsed_s = time.monotonic() - started
    return report
