"""Catalog reads: ``/api/v1/songs/{id}``, ``/artists/{id}``, ``/albums/{id}``, top songs."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from streaming_api.catalog import reads
from streaming_api.deps import DbDep, PrincipalDep
from streaming_api.routes.search import AlbumRef, ArtistRef

router = APIRouter(prefix="/api/v1", tags=["catalog"])

# Catalog ids are "so-", "ar-" or "al-" and 16 hex digits; longer is refused (422) unread.
CatalogId = Annotated[str, Path(max_length=32, description="A catalog id, e.g. `so-0123...`.")]


class SongOut(BaseModel):
    id: str
    title: str
    artist: ArtistRef
    album: AlbumRef
    track_number: int | None
    genre: str
    duration_ms: int
    release_date: date | None
    explicit: bool
    territories: list[str] = Field(description="ISO 3166-1 alpha-2 codes it may stream in.")
    lyrics_url: str | None
    popularity: float = Field(description="The catalog's relative popularity.")
    stream_available: bool = Field(
        description="Its media is ingested: `/api/v1/songs/{id}/stream` can play it."
    )


class AlbumSummary(BaseModel):
    id: str
    title: str
    release_year: int | None
    cover_art_url: str | None


class ArtistOut(BaseModel):
    id: str
    name: str
    bio: str | None
    image_url: str | None
    albums: list[AlbumSummary] = Field(description="Oldest first.")


class Track(BaseModel):
    id: str
    title: str
    track_number: int | None
    duration_ms: int
    explicit: bool
    stream_available: bool


class AlbumOut(BaseModel):
    id: str
    title: str
    artist: ArtistRef
    release_year: int | None
    cover_art_url: str | None
    songs: list[Track] = Field(description="In track order.")


class TopSong(BaseModel):
    rank: int = Field(description="1 is the most played (or most popular).")
    id: str
    title: str
    album: AlbumRef
    plays: int | None = Field(description="Plays in the window; null when `source` is catalog.")
    popularity: float


class TopSongsOut(BaseModel):
    artist: ArtistRef
    source: Literal["plays", "catalog"] = Field(
        description="`plays`: counted by the lakehouse over `window_days` before "
        "`computed_at`; `catalog`: no plays published for this artist yet, ranked by the "
        "catalog's popularity."
    )
    window_days: int | None
    computed_at: datetime | None
    songs: list[TopSong]


def _artist(ref: reads.Ref) -> ArtistRef:
    return ArtistRef(id=ref.id, name=ref.name)


def _album(ref: reads.Ref) -> AlbumRef:
    return AlbumRef(id=ref.id, title=ref.name)


@router.get("/songs/{song_id}", response_model=SongOut)
async def read_song(principal: PrincipalDep, db: DbDep, song_id: CatalogId) -> SongOut:
    """One song: its metadata, artist, album, where it is licensed and whether it streams."""
    song = await anyio.to_thread.run_sync(reads.read_song, db, song_id)
    fields = asdict(song) | {"artist": _artist(song.artist), "album": _album(song.album)}
    return SongOut(**fields)


@router.get("/artists/{artist_id}", response_model=ArtistOut)
async def read_artist(principal: PrincipalDep, db: DbDep, artist_id: CatalogId) -> ArtistOut:
    """One artist with their albums, oldest first."""
    artist = await anyio.to_thread.run_sync(reads.read_artist, db, artist_id)
    return ArtistOut(**asdict(artist))


@router.get("/albums/{album_id}", response_model=AlbumOut)
async def read_album(principal: PrincipalDep, db: DbDep, album_id: CatalogId) -> AlbumOut:
    """One album with its songs in track order."""
    album = await anyio.to_thread.run_sync(reads.read_album, db, album_id)
    return AlbumOut(
        id=album.id,
        title=album.title,
        artist=_artist(album.artist),
        release_year=album.release_year,
        cover_art_url=album.cover_art_url,
        songs=[Track(**asdict(track)) for track in album.tracks],
    )


@router.get("/artists/{artist_id}/top-songs", response_model=TopSongsOut)
async def read_top_songs(
    principal: PrincipalDep,
    db: DbDep,
    artist_id: CatalogId,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> TopSongsOut:
    """The artist's top songs. Counts come from the lakehouse's `artist_top_songs` table:
    plays of each song over a window of days (`source: plays`, with `window_days` and
    `computed_at`). Until the lakehouse has published plays for the artist, the songs are
    ranked by the catalog's popularity instead (`source: catalog`, `plays` null)."""
    top = await anyio.to_thread.run_sync(reads.read_top_songs, db, artist_id, limit)
    return TopSongsOut(
        artist=_artist(top.artist),
        source=top.source,
        window_days=top.window_days,
        computed_at=top.computed_at,
        songs=[
            TopSong(
                rank=song.rank,
                id=song.id,
                title=song.title,
                album=_album(song.album),
                plays=song.plays,
                popularity=song.popularity,
            )
            for song in top.songs
        ],
    )
