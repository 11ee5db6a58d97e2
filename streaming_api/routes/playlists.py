"""Playlists: ``/api/v1/playlists``, owner-only writes, ``If-Match`` versions.

Listener tokens read their own playlists and any public one, and change only their own. The
service token may read public playlists (``GET /{playlist_id}``); it owns none, so listing
and every write answer 403: nothing is written on nobody's behalf.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from streaming_api.deps import DbDep, PrincipalDep
from streaming_api.errors import error_responses
from streaming_api.playlists import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SONGS_PER_PLAYLIST,
    MAX_SONGS_PER_REQUEST,
    Playlist,
    PlaylistStore,
    etag,
    version_from_if_match,
)

router = APIRouter(prefix="/api/v1/playlists", tags=["playlists"])

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
NO_NUL = r"^[^\x00]*$"
NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # one line, no control characters
IF_MATCH_PATTERN = r'^(W/)?("[0-9]{1,10}"|[0-9]{1,10})$'  # one version: no `*`, no list

SongId = Annotated[str, Field(pattern=ID_PATTERN, examples=["so-3f2a9c0d1e4b5a67"])]
PlaylistId = Annotated[str, Path(pattern=ID_PATTERN, description="The playlist's id (`pl-...`).")]
Position = Annotated[int, Field(ge=0, le=MAX_SONGS_PER_PLAYLIST)]


def if_match_version(request: Request) -> int | None:
    """The version the ``If-Match`` header names; ``None`` without one (the store answers
    428 once it knows the caller may write). Read here rather than declared as a ``Header``
    parameter so that a missing header is a 428, not FastAPI's 422."""
    return version_from_if_match(request.headers.get("if-match"))


VersionDep = Annotated[int | None, Depends(if_match_version)]


def _if_match_parameter() -> dict[str, Any]:
    """``openapi_extra`` of a write: ``If-Match`` as a required header parameter."""
    return {
        "parameters": [
            {
                "name": "If-Match",
                "in": "header",
                "required": True,
                "description": (
                    'The `ETag` of your last read, `"<version>"`. A stale one answers **412** '
                    "(someone changed the playlist since: read it again), none **428**."
                ),
                "schema": {"type": "string", "pattern": IF_MATCH_PATTERN, "examples": ['"1"']},
            }
        ]
    }


# strict: 0 is not false and "1" is not 1; what the schema refuses, the API refuses
BODY_CONFIG = ConfigDict(extra="forbid", strict=True)

_ETAG_HEADER = {
    "ETag": {"description": 'The playlist\'s version, `"<version>"`.', "schema": {"type": "string"}}
}
_WRITE_ERRORS = error_responses(403, 412, 428)


def get_store(db: DbDep) -> PlaylistStore:
    return PlaylistStore(db)


StoreDep = Annotated[PlaylistStore, Depends(get_store)]


class PlaylistEntryOut(BaseModel):
    entry_id: int = Field(description="Stable id of this place in the playlist.")
    position: int = Field(description="0-based; positions are dense.")
    song_id: str
    title: str
    artist_name: str
    duration_ms: int
    added_at: datetime


class PlaylistSummaryOut(BaseModel):
    playlist_id: str
    owner_id: str
    name: str
    description: str
    is_public: bool
    version: int = Field(description='Send it back as `If-Match: "<version>"` to change it.')
    song_count: int
    created_at: datetime
    updated_at: datetime


class PlaylistOut(PlaylistSummaryOut):
    songs: list[PlaylistEntryOut] = Field(description="In playlist order.")


class PlaylistPage(BaseModel):
    items: list[PlaylistSummaryOut]
    total: int = Field(description="All your playlists, across pages.")
    limit: int
    offset: int


class PlaylistCreate(BaseModel):
    model_config = BODY_CONFIG

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_LENGTH, pattern=NO_NUL)
    is_public: bool = False
    song_ids: list[SongId] = Field(
        default_factory=list,
        max_length=MAX_SONGS_PER_REQUEST,
        description="Initial songs, in order (a song may appear more than once).",
    )


class PlaylistChanges(BaseModel):
    """The fields to change; those left out (or null) keep their value."""

    model_config = BODY_CONFIG

    name: str | None = Field(
        default=None, min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH, pattern=NO_NUL)
    is_public: bool | None = None


class SongsToAdd(BaseModel):
    model_config = BODY_CONFIG

    song_ids: list[SongId] = Field(min_length=1, max_length=MAX_SONGS_PER_REQUEST)
    position: Position | None = Field(
        default=None,
        description="Where the first one goes (0: the start); left out: the end.",
    )


class SongsMove(BaseModel):
    """Move `count` entries starting at `from_position` so that the first of them ends at
    `to_position` (a position in the playlist after the move)."""

    model_config = BODY_CONFIG

    from_position: Position
    to_position: Position
    count: int = Field(default=1, ge=1, le=MAX_SONGS_PER_PLAYLIST)


def _answer(response: Response, playlist: Playlist) -> PlaylistOut:
    response.headers["ETag"] = etag(playlist.version)
    return PlaylistOut.model_validate(playlist, from_attributes=True)


@router.post(
    "",
    status_code=201,
    response_model=PlaylistOut,
    responses={
        201: {
            "headers": {
                **_ETAG_HEADER,
                "Location": {"description": "The playlist's URL.", "schema": {"type": "string"}},
            }
        },
        **error_responses(403),
    },
)
async def create_playlist(
    principal: PrincipalDep,
    store: StoreDep,
    response: Response,
    playlist: Annotated[PlaylistCreate, Body()],
) -> PlaylistOut:
    """Create a playlist (private unless `is_public`), optionally with songs. Unknown song
    ids answer **422** naming them. Listener tokens only (**403** for the service token)."""
    owner_id = principal.listener_id()
    created = await anyio.to_thread.run_sync(
        lambda: store.create(owner_id, **playlist.model_dump())
    )
    response.headers["Location"] = f"{router.prefix}/{created.playlist_id}"
    return _answer(response, created)


@router.get("", response_model=PlaylistPage, responses=error_responses(403))
async def list_playlists(
    principal: PrincipalDep,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PlaylistPage:
    """Your playlists, newest first, without their songs. Listener tokens only."""
    owner_id = principal.listener_id()
    items, total = await anyio.to_thread.run_sync(store.list_owned, owner_id, limit, offset)
    return PlaylistPage(
        items=[PlaylistSummaryOut.model_validate(item, from_attributes=True) for item in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{playlist_id}", response_model=PlaylistOut, responses={200: {"headers": _ETAG_HEADER}}
)
async def read_playlist(
    playlist_id: PlaylistId, principal: PrincipalDep, store: StoreDep, response: Response
) -> PlaylistOut:
    """A playlist with its songs in order, and its version as `ETag`. Yours, or anyone's
    public one; another listener's private playlist answers **404**, as if it did not exist.
    The service token reads public playlists."""
    reader_id = None if principal.is_service else principal.user_id
    playlist = await anyio.to_thread.run_sync(store.read, playlist_id, reader_id)
    return _answer(response, playlist)


@router.patch(
    "/{playlist_id}",
    response_model=PlaylistOut,
    responses={200: {"headers": _ETAG_HEADER}, **_WRITE_ERRORS},
    openapi_extra=_if_match_parameter(),
)
async def change_playlist(
    playlist_id: PlaylistId,
    principal: PrincipalDep,
    store: StoreDep,
    response: Response,
    changes: Annotated[PlaylistChanges, Body()],
    version: VersionDep,
) -> PlaylistOut:
    """Rename it, change its description or make it public or private. Owner only (another
    listener's public playlist: **403**). Answers the playlist and its new `ETag`."""
    owner_id = principal.listener_id()
    fields: dict[str, Any] = {
        name: value
        for name, value in changes.model_dump(exclude_unset=True).items()
        if value is not None
    }
    playlist = await anyio.to_thread.run_sync(store.update, playlist_id, owner_id, version, fields)
    return _answer(response, playlist)


@router.delete(
    "/{playlist_id}",
    status_code=204,
    responses=_WRITE_ERRORS,
    openapi_extra=_if_match_parameter(),
)
async def delete_playlist(
    playlist_id: PlaylistId, principal: PrincipalDep, store: StoreDep, version: VersionDep
) -> Response:
    """Delete the playlist. Owner only; deleting it again answers **404**."""
    owner_id = principal.listener_id()
    await anyio.to_thread.run_sync(store.delete, playlist_id, owner_id, version)
    return Response(status_code=204)


@router.post(
    "/{playlist_id}/songs",
    response_model=PlaylistOut,
    responses={200: {"headers": _ETAG_HEADER}, **_WRITE_ERRORS},
    openapi_extra=_if_match_parameter(),
)
async def add_songs(
    playlist_id: PlaylistId,
    principal: PrincipalDep,
    store: StoreDep,
    response: Response,
    songs: Annotated[SongsToAdd, Body()],
    version: VersionDep,
) -> PlaylistOut:
    """Insert songs, in the order given, at `position` (default: the end); the songs from
    there move down. Unknown song ids, a position past the end or more than
    10,000 songs in the playlist answer **422** with the reason."""
    owner_id = principal.listener_id()
    playlist = await anyio.to_thread.run_sync(
        store.add_songs, playlist_id, owner_id, version, songs.song_ids, songs.position
    )
    return _answer(response, playlist)


@router.delete(
    "/{playlist_id}/songs/{position:int}",  # int: `songs/move` is not a position
    response_model=PlaylistOut,
    responses={200: {"headers": _ETAG_HEADER}, **_WRITE_ERRORS},
    openapi_extra=_if_match_parameter(),
)
async def remove_song(
    playlist_id: PlaylistId,
    position: Annotated[int, Path(ge=0, le=MAX_SONGS_PER_PLAYLIST)],
    principal: PrincipalDep,
    store: StoreDep,
    response: Response,
    version: VersionDep,
) -> PlaylistOut:
    """Remove the entry at `position` (by position, not song id: a song may be in the
    playlist twice; `If-Match` makes sure the position is the one you saw). The songs after
    it move up one. No entry there answers **422**."""
    owner_id = principal.listener_id()
    playlist = await anyio.to_thread.run_sync(
        store.remove_song, playlist_id, owner_id, version, position
    )
    return _answer(response, playlist)


@router.post(
    "/{playlist_id}/songs/move",
    response_model=PlaylistOut,
    responses={200: {"headers": _ETAG_HEADER}, **_WRITE_ERRORS},
    openapi_extra=_if_match_parameter(),
)
async def move_songs(
    playlist_id: PlaylistId,
    principal: PrincipalDep,
    store: StoreDep,
    response: Response,
    move: Annotated[SongsMove, Body()],
    version: VersionDep,
) -> PlaylistOut:
    """Move one entry, or a block of `count` consecutive entries, to another position; the
    block keeps its order. A block or target past the end answers **422**."""
    owner_id = principal.listener_id()
    playlist = await anyio.to_thread.run_sync(
        lambda: store.move_songs(
            playlist_id, owner_id, version, move.from_position, move.to_position, move.count
        )
    )
    return _answer(response, playlist)
