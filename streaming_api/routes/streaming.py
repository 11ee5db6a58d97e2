"""Streaming: ``/api/v1/songs/{id}/stream`` and the token-checked HLS playback routes.

``GET /api/v1/songs/{id}/stream`` gives a listener a master playlist URL carrying a signed,
expiring stream token (``streaming_api.media.tokens``). The playback routes under
``/api/v1/stream/{song_id}/{token}/`` check that token before reading anything and serve
the playlists (rewritten so that every URI carries the token), the encrypted segments and
the song's AES-128 key. See docs/streaming.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from encore.errors import NotFoundError
from encore.settings import Settings
from streaming_api.deps import DbDep, PrincipalDep, SettingsDep
from streaming_api.errors import error_responses
from streaming_api.media.hls import (
    find_streamable,
    load_media,
    rewrite_master,
    rewrite_variant,
    segment_names,
)
from streaming_api.media.storage import MediaStorage, open_storage
from streaming_api.media.tokens import issue_stream_token, verify_stream_token
from streaming_api.media.transcode import SEGMENT_NAME

router = APIRouter(prefix="/api/v1", tags=["streaming"])

SongId = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", description="Song id.")
]
Token = Annotated[str, Path(max_length=1024, description="The stream token of the URL given.")]
Kbps = Annotated[int, Path(ge=1, le=10_000, description="A bitrate of the song's ladder.")]
Segment = Annotated[str, Path(pattern=SEGMENT_NAME.pattern, description="A segment name.")]

# Playlists and the key are per-token: nothing may keep them. Segments are encrypted and
# only useful with the key, so a listener's own cache may keep them.
NO_STORE = {"Cache-Control": "no-store"}
SEGMENT_CACHE = {"Cache-Control": "private, max-age=3600"}


class PlaylistResponse(Response):
    media_type = "application/vnd.apple.mpegurl"


class SegmentResponse(Response):
    media_type = "video/mp2t"


class KeyResponse(Response):
    media_type = "application/octet-stream"


def _ok(response_class: type[Response]) -> dict[int | str, dict]:
    """Document a 200 of ``response_class``'s media type (errors stay JSON ``ErrorBody``)."""
    content = {response_class.media_type: {"schema": {"type": "string", "format": "binary"}}}
    return {200: {"description": "Successful Response", "content": content}}


class StreamOut(BaseModel):
    song_id: str
    master_url: str = Field(
        description="HLS master playlist URL; give it to an HLS player (or `ffmpeg -i`)."
    )
    expires_at: datetime = Field(description="After this, every URL of the stream answers 401.")
    bitrates_kbps: list[int] = Field(description="The AAC ladder the master playlist offers.")


def _storage(request: Request, settings: Settings) -> MediaStorage:
    storage = getattr(request.app.state, "media_storage", None)
    if storage is None:
        storage = request.app.state.media_storage = open_storage(settings)
    return storage


def _stream_base(settings: Settings, song_id: str, token: str) -> str:
    return f"{settings.api.base_url}/api/v1/stream/{song_id}/{token}"


@router.get(
    "/songs/{song_id}/stream", response_model=StreamOut, responses=error_responses(403, 451)
)
async def stream_song(
    song_id: SongId, principal: PrincipalDep, db: DbDep, settings: SettingsDep
) -> StreamOut:
    """A master playlist URL to play the song, valid for `media.stream_token_ttl_s`.

    Listener tokens only (the service token streams for no one: **403**). **404**: no such
    song, or it has no media yet. **451**: the song is not licensed in your account's
    country; with no country on file, only worldwide-licensed songs stream."""
    user_id = principal.listener_id()
    media = await anyio.to_thread.run_sync(find_streamable, db, song_id, user_id)
    token, grant = issue_stream_token(settings, user_id, song_id)
    return StreamOut(
        song_id=song_id,
        master_url=f"{_stream_base(settings, song_id, token)}/master.m3u8",
        expires_at=datetime.fromtimestamp(grant.expires_at, UTC),
        bitrates_kbps=list(media.bitrates_kbps),
    )


@router.get(
    "/stream/{song_id}/{token}/master.m3u8",
    response_class=Response,
    responses=_ok(PlaylistResponse),
)
async def master_playlist(
    song_id: SongId, token: Token, request: Request, db: DbDep, settings: SettingsDep
) -> Response:
    """The song's HLS master playlist: one variant per bitrate. **401**: a bad, tampered or
    expired token, or one for another song."""
    verify_stream_token(settings, token, song_id)
    media = await anyio.to_thread.run_sync(load_media, db, song_id)
    stored = await anyio.to_thread.run_sync(
        _storage(request, settings).read_bytes, media.manifest_path
    )
    body = rewrite_master(stored.decode(), _stream_base(settings, song_id, token))
    return PlaylistResponse(body, headers=NO_STORE)


@router.get(
    "/stream/{song_id}/{token}/{kbps}/index.m3u8",
    response_class=Response,
    responses=_ok(PlaylistResponse),
)
async def variant_playlist(
    song_id: SongId,
    token: Token,
    kbps: Kbps,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
) -> Response:
    """One bitrate's playlist: its encrypted segments and the key URI, all tokened."""
    verify_stream_token(settings, token, song_id)
    media = await anyio.to_thread.run_sync(load_media, db, song_id)
    stored = await anyio.to_thread.run_sync(
        _storage(request, settings).read_bytes, media.variant_path(kbps)
    )
    body = rewrite_variant(stored.decode(), _stream_base(settings, song_id, token), kbps)
    return PlaylistResponse(body, headers=NO_STORE)


@router.get(
    "/stream/{song_id}/{token}/{kbps}/{segment}",
    response_class=Response,
    responses=_ok(SegmentResponse),
)
async def media_segment(
    song_id: SongId,
    token: Token,
    kbps: Kbps,
    segment: Segment,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
) -> Response:
    """One AES-128-encrypted MPEG-TS segment of AAC audio."""
    verify_stream_token(settings, token, song_id)
    media = await anyio.to_thread.run_sync(load_media, db, song_id)
    storage = _storage(request, settings)
    variant = media.variant_path(kbps)
    playlist = await anyio.to_thread.run_sync(storage.read_bytes, variant)
    if segment not in segment_names(playlist.decode()):
        raise NotFoundError(f"no segment {segment!r} in the {kbps} kbps rendition")
    folder = variant.rsplit("/", 1)[0]
    body = await anyio.to_thread.run_sync(storage.read_bytes, f"{folder}/{segment}")
    return SegmentResponse(body, headers=SEGMENT_CACHE)


@router.get("/stream/{song_id}/{token}/key", response_class=Response, responses=_ok(KeyResponse))
async def song_key(
    song_id: SongId, token: Token, request: Request, db: DbDep, settings: SettingsDep
) -> Response:
    """The song's 16-byte AES-128 key, for a valid token of this song only."""
    verify_stream_token(settings, token, song_id)
    media = await anyio.to_thread.run_sync(load_media, db, song_id)
    body = await anyio.to_thread.run_sync(_storage(request, settings).read_bytes, media.key_path)
    return KeyResponse(body, headers=NO_STORE)
