"""Catalog reads: one song, one artist with its albums, one album with its songs in track
order, and an artist's top songs.

What a client sees of a song is its metadata and whether it can be streamed
(``hls_manifest`` set by content ingestion), never where its media or keys live. Ids that
cannot be catalog ids (``ids.py``: a two-letter prefix and 16 hex digits) are unknown without
asking the database, so a hostile id (NUL, control characters) is a 404 and never reaches SQL.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from encore.db.ids import ID_HEX_DIGITS
from encore.db.schema import albums, artist_top_songs, artists, songs
from encore.errors import NotFoundError
from streaming_api.database import reading

log = logging.getLogger(__name__)

_ID_SHAPE = {
    prefix: re.compile(rf"{prefix}-[0-9a-f]{{{ID_HEX_DIGITS}}}") for prefix in ("ar", "al", "so")
}


@dataclass(frozen=True)
class Ref:
    """An artist or album as other records name it."""

    id: str
    name: str


@dataclass(frozen=True)
class Song:
    id: str
    title: str
    artist: Ref
    album: Ref
    track_number: int | None
    genre: str
    duration_ms: int
    release_date: date | None
    explicit: bool
    territories: list[str]
    lyrics_url: str | None
    popularity: float
    stream_available: bool


@dataclass(frozen=True)
class AlbumSummary:
    id: str
    title: str
    release_year: int | None
    cover_art_url: str | None


@dataclass(frozen=True)
class Artist:
    id: str
    name: str
    bio: str | None
    image_url: str | None
    albums: list[AlbumSummary]


@dataclass(frozen=True)
class Track:
    """A song as an album lists it."""

    id: str
    title: str
    track_number: int | None
    duration_ms: int
    explicit: bool
    stream_available: bool


@dataclass(frozen=True)
class Album:
    id: str
    title: str
    artist: Ref
    release_year: int | None
    cover_art_url: str | None
    tracks: list[Track]


@dataclass(frozen=True)
class TopSong:
    rank: int
    id: str
    title: str
    album: Ref
    plays: int | None
    popularity: float


@dataclass(frozen=True)
class TopSongs:
    """``source`` "plays": ``artist_top_songs`` (window and time of the count given);
    "catalog": no plays published for the artist yet, ranked by ``songs.popularity``."""

    artist: Ref
    source: str
    window_days: int | None
    computed_at: datetime | None
    songs: list[TopSong]


def _check_shape(kind: str, prefix: str, id_: str) -> None:
    if not _ID_SHAPE[prefix].fullmatch(id_):
        raise NotFoundError(f"no {kind} with id {id_!r} (catalog ids look like {prefix}-<16 hex>)")


def read_song(engine: Engine, song_id: str) -> Song:
    """The song ``song_id`` with its artist and album.

    Raises:
        NotFoundError: no such song.
        UnavailableError: PostgreSQL did not answer.
    """
    _check_shape("song", "so", song_id)
    statement = (
        select(songs, artists.c.name.label("artist_name"), albums.c.title.label("album_title"))
        .join(artists, artists.c.artist_id == songs.c.artist_id)
        .join(albums, albums.c.album_id == songs.c.album_id)
        .where(songs.c.song_id == song_id)
    )
    with reading(engine) as connection:
        row = connection.execute(statement).one_or_none()
    if row is None:
        raise NotFoundError(f"no song with id {song_id!r}")
    return Song(
        id=row.song_id,
        title=row.title,
        artist=Ref(row.artist_id, row.artist_name),
        album=Ref(row.album_id, row.album_title),
        track_number=row.track_number,
        genre=row.genre,
        duration_ms=row.duration_ms,
        release_date=row.release_date,
        explicit=row.explicit,
        territories=list(row.territories),
        lyrics_url=row.lyrics_url,
        popularity=row.popularity,
        stream_available=row.hls_manifest is not None,
    )


def read_artist(engine: Engine, artist_id: str) -> Artist:
    """The artist ``artist_id`` with their albums, oldest first.

    Raises:
        NotFoundError: no such artist.
        UnavailableError: PostgreSQL did not answer.
    """
    _check_shape("artist", "ar", artist_id)
    with reading(engine) as connection:
        artist = connection.execute(
            select(artists).where(artists.c.artist_id == artist_id)
        ).one_or_none()
        if artist is None:
            raise NotFoundError(f"no artist with id {artist_id!r}")
        album_rows = connection.execute(
            select(albums)
            .where(albums.c.artist_id == artist_id)
            .order_by(albums.c.release_year.asc().nulls_last(), albums.c.title, albums.c.album_id)
        ).all()
    return Artist(
        id=artist.artist_id,
        name=artist.name,
        bio=artist.bio,
        image_url=artist.image_url,
        albums=[
            AlbumSummary(row.album_id, row.title, row.release_year, row.cover_art_url)
            for row in album_rows
        ],
    )


def read_album(engine: Engine, album_id: str) -> Album:
    """The album ``album_id`` with its songs in track order (unnumbered ones last, by title).

    Raises:
        NotFoundError: no such album.
        UnavailableError: PostgreSQL did not answer.
    """
    _check_shape("album", "al", album_id)
    with reading(engine) as connection:
        album = connection.execute(
            select(albums, artists.c.name.label("artist_name"))
            .join(artists, artists.c.artist_id == albums.c.artist_id)
            .where(albums.c.album_id == album_id)
        ).one_or_none()
        if album is None:
            raise NotFoundError(f"no album with id {album_id!r}")
        track_rows = connection.execute(
            select(songs)
            .where(songs.c.album_id == album_id)
            .order_by(songs.c.track_number.asc().nulls_last(), songs.c.title, songs.c.song_id)
        ).all()
    return Album(
        id=album.album_id,
        title=album.title,
        artist=Ref(album.artist_id, album.artist_name),
        release_year=album.release_year,
        cover_art_url=album.cover_art_url,
        tracks=[
            Track(
                id=row.song_id,
                title=row.title,
                track_number=row.track_number,
                duration_ms=row.duration_ms,
                explicit=row.explicit,
                stream_available=row.hls_manifest is not None,
            )
            for row in track_rows
        ],
    )


def read_top_songs(engine: Engine, artist_id: str, limit: int = 10) -> TopSongs:
    """The artist's most played songs from ``artist_top_songs`` (published by the
    lakehouse); while it holds none for the artist, their most popular catalog songs.

    Raises:
        NotFoundError: no such artist.
        UnavailableError: PostgreSQL did not answer.
    """
    _check_shape("artist", "ar", artist_id)
    with reading(engine) as connection:
        artist = connection.execute(
            select(artists.c.artist_id, artists.c.name).where(artists.c.artist_id == artist_id)
        ).one_or_none()
        if artist is None:
            raise NotFoundError(f"no artist with id {artist_id!r}")
        played = _top_by_plays(connection, artist_id, limit)
        if played:
            return played
        rows = connection.execute(
            select(songs.c.song_id, songs.c.title, songs.c.popularity, albums.c.album_id)
            .add_columns(albums.c.title.label("album_title"))
            .join(albums, albums.c.album_id == songs.c.album_id)
            .where(songs.c.artist_id == artist_id)
            .order_by(songs.c.popularity.desc(), songs.c.song_id)
            .limit(limit)
        ).all()
    return TopSongs(
        artist=Ref(artist.artist_id, artist.name),
        source="catalog",
        window_days=None,
        computed_at=None,
        songs=[
            TopSong(
                rank=rank,
                id=row.song_id,
                title=row.title,
                album=Ref(row.album_id, row.album_title),
                plays=None,
                popularity=row.popularity,
            )
            for rank, row in enumerate(rows, start=1)
        ],
    )


def _top_by_plays(connection: Connection, artist_id: str, limit: int) -> TopSongs | None:
    rows = connection.execute(
        select(
            artist_top_songs.c.rank,
            artist_top_songs.c.plays,
            artist_top_songs.c.window_days,
            artist_top_songs.c.computed_at,
            artists.c.name.label("artist_name"),
            songs.c.song_id,
            songs.c.title,
            songs.c.popularity,
            albums.c.album_id,
            albums.c.title.label("album_title"),
        )
        # a song gone from the catalog since the lakehouse counted it is left out
        .join(songs, songs.c.song_id == artist_top_songs.c.song_id)
        .join(albums, albums.c.album_id == songs.c.album_id)
        .join(artists, artists.c.artist_id == artist_top_songs.c.artist_id)
        .where(artist_top_songs.c.artist_id == artist_id)
        .order_by(artist_top_songs.c.rank, songs.c.song_id)
        .limit(limit)
    ).all()
    if not rows:
        return None
    first = rows[0]
    return TopSongs(
        artist=Ref(artist_id, first.artist_name),
        source="plays",
        window_days=first.window_days,
        computed_at=first.computed_at,
        songs=[
            TopSong(
                rank=row.rank,
                id=row.song_id,
                title=row.title,
                album=Ref(row.album_id, row.album_title),
                plays=row.plays,
                popularity=row.popularity,
            )
            for row in rows
        ],
    )
