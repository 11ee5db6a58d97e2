"""Serving ingested songs: who may stream what, and the playlists rewritten per token.

Stored playlists hold relative URIs and a placeholder key URI (``transcode.py``); a listener
gets them rewritten so that every URI is absolute and carries their stream token, the
``#EXT-X-KEY`` URI included. Segment names a client asks for are looked up in the variant
playlist, never joined into a path as they arrive.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from encore.db.schema import accounts, song_media, songs
from encore.errors import NotFoundError
from streaming_api.catalog.taxonomy import WORLDWIDE
from streaming_api.database import unavailable
from streaming_api.errors import NotLicensedError
from streaming_api.media.transcode import MASTER_PLAYLIST, SEGMENT_NAME, VARIANT_PLAYLIST

log = logging.getLogger(__name__)

_VARIANT_URI = re.compile(rf"^(\d+)/{re.escape(VARIANT_PLAYLIST)}$")
_KEY_URI = re.compile(r'URI="[^"]*"')


@dataclass(frozen=True)
class SongMedia:
    song_id: str
    manifest_path: str
    key_path: str
    bitrates_kbps: tuple[int, ...]

    @property
    def folder(self) -> str:
        return self.manifest_path.removesuffix(f"/{MASTER_PLAYLIST}")

    def variant_path(self, kbps: int) -> str:
        if kbps not in self.bitrates_kbps:
            raise NotFoundError(
                f"song {self.song_id!r} has no {kbps} kbps rendition; it has "
                f"{list(self.bitrates_kbps)}"
            )
        return f"{self.folder}/{kbps}/{VARIANT_PLAYLIST}"


def check_licensed(song_id: str, territories: list[str], country: str | None) -> None:
    """Whether a listener in ``country`` may stream a song licensed in ``territories``.

    A listener with no country on file may stream only songs licensed in every market the
    catalog knows (``taxonomy.WORLDWIDE``): nothing says where they are, and a song licensed
    in fewer places needs that said.

    Raises:
        NotLicensedError: the song is not licensed there (or nowhere known, for no country).
    """
    licensed = set(territories)
    if country is None:
        if licensed >= set(WORLDWIDE):
            return
        raise NotLicensedError(
            f"song {song_id!r} is licensed in {len(licensed)} territories only and your "
            "account has no country on file (set it with PATCH /api/v1/me)"
        )
    if country not in licensed:
        raise NotLicensedError(f"song {song_id!r} is not licensed in {country}")


def find_streamable(engine: Engine, song_id: str, user_id: str) -> SongMedia:
    """The media of ``song_id`` if ``user_id`` may stream it.

    Raises:
        NotFoundError: no such song, no media for it yet, or no such account.
        NotLicensedError: not licensed in the listener's country (``check_licensed``).
        UnavailableError: PostgreSQL did not answer.
    """
    try:
        with engine.connect() as connection:
            song = connection.execute(
                select(
                    songs.c.territories,
                    song_media.c.manifest_path,
                    song_media.c.key_path,
                    song_media.c.bitrates_kbps,
                )
                .select_from(songs.outerjoin(song_media))
                .where(songs.c.song_id == song_id)
            ).first()
            account = connection.execute(
                select(accounts.c.country).where(accounts.c.user_id == user_id)
            ).first()
    except OperationalError as error:
        raise unavailable(error) from error
    if song is None:
        raise NotFoundError(f"no song {song_id!r}")
    if account is None:
        raise NotFoundError(f"no account {user_id!r}")
    if song.manifest_path is None:
        raise NotFoundError(f"song {song_id!r} has no media yet (it is not ingested)")
    check_licensed(song_id, song.territories, account.country)
    return SongMedia(song_id, song.manifest_path, song.key_path, tuple(song.bitrates_kbps))


def load_media(engine: Engine, song_id: str) -> SongMedia:
    """The media of ``song_id`` (for a request whose token was checked already).

    Raises:
        NotFoundError: the song has no media.
        UnavailableError: PostgreSQL did not answer.
    """
    try:
        with engine.connect() as connection:
            row = connection.execute(
                select(
                    song_media.c.manifest_path, song_media.c.key_path, song_media.c.bitrates_kbps
                ).where(song_media.c.song_id == song_id)
            ).first()
    except OperationalError as error:
        raise unavailable(error) from error
    if row is None:
        raise NotFoundError(f"song {song_id!r} has no media")
    return SongMedia(song_id, row.manifest_path, row.key_path, tuple(row.bitrates_kbps))


def rewrite_master(playlist: str, base_url: str) -> str:
    """The master playlist with each variant URI made ``<base_url>/<kbps>/index.m3u8``."""
    lines = []
    for line in playlist.splitlines():
        if (match := _VARIANT_URI.match(line.strip())) is not None:
            line = f"{base_url}/{match.group(1)}/{VARIANT_PLAYLIST}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def rewrite_variant(playlist: str, base_url: str, kbps: int) -> str:
    """A variant playlist with absolute, tokened segment and key URIs."""
    lines = []
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-KEY:"):
            line = _KEY_URI.sub(f'URI="{base_url}/key"', line)
        elif SEGMENT_NAME.match(line.strip()):
            line = f"{base_url}/{kbps}/{line.strip()}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def segment_names(playlist: str) -> set[str]:
    """The segment file names a variant playlist lists."""
    return {line.strip() for line in playlist.splitlines() if SEGMENT_NAME.match(line.strip())}
