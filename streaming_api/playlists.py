"""Listeners' playlists in PostgreSQL: an ordered song list with owner-only, versioned writes.

Tables ``playlists`` and ``playlist_songs`` (``encore.db.schema``). A playlist's entries have
dense 0-based positions; every change renumbers what it must in the same transaction (the
unique ``(playlist_id, position)`` constraint is checked at commit, so rows may pass through
each other's positions meanwhile). A song may appear more than once.

Access: the owner reads and writes; any listener reads a public playlist; anyone else's
private playlist does not exist for them (``NotFoundError``, never ``PermissionDeniedError``,
so its id reveals nothing). ``reader_id=None`` (the service token) reads public playlists only.

Lost updates: every write names the version it read. The playlist row is locked
(``SELECT ... FOR UPDATE``) before its version is compared and bumped, so of two writers that
read the same version exactly one wins; the other waits for the lock, then sees the new
version and gets ``PreconditionFailedError``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from encore.db.schema import artists, playlist_songs, playlists, songs
from encore.errors import ContractError, NotFoundError
from streaming_api.database import unavailable
from streaming_api.errors import (
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
)

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000
MAX_SONGS_PER_PLAYLIST = 10_000
MAX_SONGS_PER_REQUEST = 500
# unknown ids quoted back in one error message, at most
_QUOTED_IDS = 20


@dataclass(frozen=True)
class PlaylistEntry:
    """One place in a playlist: which song, where, since when."""

    entry_id: int
    position: int
    song_id: str
    title: str
    artist_name: str
    duration_ms: int
    added_at: datetime


@dataclass(frozen=True)
class PlaylistSummary:
    playlist_id: str
    owner_id: str
    name: str
    description: str
    is_public: bool
    version: int
    song_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Playlist(PlaylistSummary):
    songs: list[PlaylistEntry]


def check_text(field: str, value: str, max_length: int, min_length: int = 0) -> None:
    """Refuse what PostgreSQL cannot store (NUL, lone surrogates) and lengths out of range.

    Raises:
        ContractError: naming ``field`` and the rule it breaks.
    """
    if not min_length <= len(value) <= max_length:
        raise ContractError(f"{field} must have {min_length}-{max_length} characters")
    if "\x00" in value:
        raise ContractError(f"{field} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ContractError(f"{field} must be valid Unicode (no lone surrogates)") from error


def etag(version: int) -> str:
    """The ``ETag`` of a playlist at ``version``: ``"<version>"`` (a strong validator)."""
    return f'"{version}"'


def version_from_if_match(header: str | None) -> int | None:
    """The version an ``If-Match`` header names (``"3"``; ``W/"3"`` and a bare ``3`` are
    accepted too); ``None`` when there is no header.

    Raises:
        ContractError: anything else, ``*`` and lists included: a write must name the one
            version it read.
    """
    if header is None:
        return None
    tag = header.strip().removeprefix("W/")
    if len(tag) >= 2 and tag[0] == tag[-1] == '"':
        tag = tag[1:-1]
    if not (tag.isascii() and tag.isdigit() and len(tag) <= 10):
        raise ContractError(
            f'If-Match must be one ETag of this playlist, like "3"; {header[:40]!r} is not'
        )
    return int(tag)


def _quoted(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(song_id) for song_id in ids[:_QUOTED_IDS])
    return shown + (f" and {len(ids) - _QUOTED_IDS} more" if len(ids) > _QUOTED_IDS else "")


class PlaylistStore:
    """Creates, reads and changes playlists; one transaction per call."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self._engine.begin() as connection:
                yield connection
        except OperationalError as error:
            raise unavailable(error) from error
        except IntegrityError as error:
            constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", "") or ""
            if constraint == "playlists_owner_id_fkey":
                # a token that outlived its account
                raise NotFoundError("the account of this token no longer exists") from error
            if constraint == "playlist_songs_song_id_fkey":
                raise ContractError(
                    "a song of this request was removed from the catalog meanwhile"
                ) from error
            raise

    # reading

    def list_owned(
        self, owner_id: str, limit: int, offset: int
    ) -> tuple[list[PlaylistSummary], int]:
        """The owner's playlists, newest first, and how many there are in all."""
        with self._transaction() as connection:
            total = connection.execute(
                select(func.count()).where(playlists.c.owner_id == owner_id)
            ).scalar_one()
            rows = connection.execute(
                _summary_query()
                .where(playlists.c.owner_id == owner_id)
                .order_by(playlists.c.created_at.desc(), playlists.c.playlist_id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [PlaylistSummary(**row._asdict()) for row in rows], total

    def read(self, playlist_id: str, reader_id: str | None) -> Playlist:
        """The playlist and its songs in order, if ``reader_id`` may see it.

        Raises:
            NotFoundError: no such playlist, or another user's private one.
        """
        with self._transaction() as connection:
            return self._read(connection, playlist_id, reader_id)

    def _read(self, connection: Connection, playlist_id: str, reader_id: str | None) -> Playlist:
        row = connection.execute(
            _summary_query().where(playlists.c.playlist_id == playlist_id)
        ).first()
        if row is None or not (row.is_public or row.owner_id == reader_id):
            raise NotFoundError(f"no playlist {playlist_id!r}")
        entries = connection.execute(
            select(
                playlist_songs.c.entry_id,
                playlist_songs.c.position,
                playlist_songs.c.song_id,
                songs.c.title,
                artists.c.name.label("artist_name"),
                songs.c.duration_ms,
                playlist_songs.c.added_at,
            )
            .join(songs, songs.c.song_id == playlist_songs.c.song_id)
            .join(artists, artists.c.artist_id == songs.c.artist_id)
            .where(playlist_songs.c.playlist_id == playlist_id)
            .order_by(playlist_songs.c.position)
        ).all()
        return Playlist(**row._asdict(), songs=[PlaylistEntry(**e._asdict()) for e in entries])

    # writing

    def create(
        self,
        owner_id: str,
        name: str,
        description: str = "",
        is_public: bool = False,
        song_ids: Sequence[str] = (),
    ) -> Playlist:
        """A new playlist at version 1, holding ``song_ids`` in that order.

        Raises:
            ContractError: a name or description out of bounds, unknown songs, too many.
        """
        check_text("name", name, MAX_NAME_LENGTH, min_length=1)
        check_text("description", description, MAX_DESCRIPTION_LENGTH)
        _check_batch(song_ids)
        playlist_id = f"pl-{uuid.uuid4().hex[:16]}"
        with self._transaction() as connection:
            _check_songs_exist(connection, song_ids)
            connection.execute(
                insert(playlists).values(
                    playlist_id=playlist_id,
                    owner_id=owner_id,
                    name=name,
                    description=description,
                    is_public=is_public,
                    version=1,
                    created_at=func.now(),
                    updated_at=func.now(),
                )
            )
            _insert_entries(connection, playlist_id, song_ids, first_position=0)
            return self._read(connection, playlist_id, owner_id)

    def update(
        self, playlist_id: str, owner_id: str, version: int | None, changes: dict[str, object]
    ) -> Playlist:
        """Rename, describe or change the visibility (``name``, ``description``,
        ``is_public``); the others keep their value.

        Raises:
            NotFoundError, PermissionDeniedError, PreconditionRequiredError,
            PreconditionFailedError: see ``_lock_for_write``.
            ContractError: a field that is not one of those, or a value out of bounds.
        """
        unknown = sorted(set(changes) - {"name", "description", "is_public"})
        if unknown:
            raise ContractError(f"these playlist fields cannot be changed: {unknown}")
        if "name" in changes:
            check_text("name", str(changes["name"]), MAX_NAME_LENGTH, min_length=1)
        if "description" in changes:
            check_text("description", str(changes["description"]), MAX_DESCRIPTION_LENGTH)
        with self._transaction() as connection:
            _lock_for_write(connection, playlist_id, owner_id, version)
            if changes:
                connection.execute(
                    update(playlists)
                    .where(playlists.c.playlist_id == playlist_id)
                    .values(**changes)
                )
            return self._read(connection, playlist_id, owner_id)

    def delete(self, playlist_id: str, owner_id: str, version: int | None) -> None:
        """Delete the playlist and its entries.

        Raises:
            NotFoundError (also when deleted already), PermissionDeniedError,
            PreconditionRequiredError, PreconditionFailedError: see ``_lock_for_write``.
        """
        with self._transaction() as connection:
            _lock_for_write(connection, playlist_id, owner_id, version)
            connection.execute(delete(playlists).where(playlists.c.playlist_id == playlist_id))

    def add_songs(
        self,
        playlist_id: str,
        owner_id: str,
        version: int | None,
        song_ids: Sequence[str],
        position: int | None = None,
    ) -> Playlist:
        """Insert ``song_ids`` in that order at ``position`` (0 = the start; ``None`` or
        the song count = the end); the entries from there move down.

        Raises:
            ContractError: unknown songs, an empty or too large batch, a full playlist, a
                position past the end.
            NotFoundError, PermissionDeniedError, PreconditionRequiredError,
            PreconditionFailedError: see ``_lock_for_write``.
        """
        _check_batch(song_ids)
        if not song_ids:
            raise ContractError("song_ids must name at least one song")
        with self._transaction() as connection:
            count = _lock_for_write(connection, playlist_id, owner_id, version)
            if position is None:
                position = count
            if not 0 <= position <= count:
                raise ContractError(
                    f"position {position} is out of range: the playlist has {count} songs, "
                    f"so 0-{count} (the end)"
                )
            if count + len(song_ids) > MAX_SONGS_PER_PLAYLIST:
                raise ContractError(
                    f"a playlist holds at most {MAX_SONGS_PER_PLAYLIST} songs; it has {count} "
                    f"and {len(song_ids)} more were asked for"
                )
            _check_songs_exist(connection, song_ids)
            connection.execute(
                update(playlist_songs)
                .where(
                    playlist_songs.c.playlist_id == playlist_id,
                    playlist_songs.c.position >= position,
                )
                .values(position=playlist_songs.c.position + len(song_ids))
            )
            _insert_entries(connection, playlist_id, song_ids, first_position=position)
            return self._read(connection, playlist_id, owner_id)

    def remove_song(
        self, playlist_id: str, owner_id: str, version: int | None, position: int
    ) -> Playlist:
        """Remove the entry at ``position``; the entries after it move up one.

        By position, not song id: a song may be in a playlist twice, and ``If-Match`` makes
        sure the position is the one the caller saw.

        Raises:
            ContractError: no entry at ``position``.
            NotFoundError, PermissionDeniedError, PreconditionRequiredError,
            PreconditionFailedError: see ``_lock_for_write``.
        """
        with self._transaction() as connection:
            count = _lock_for_write(connection, playlist_id, owner_id, version)
            _check_range(position, 1, count)
            where = playlist_songs.c.playlist_id == playlist_id
            connection.execute(
                delete(playlist_songs).where(where, playlist_songs.c.position == position)
            )
            connection.execute(
                update(playlist_songs)
                .where(where, playlist_songs.c.position > position)
                .values(position=playlist_songs.c.position - 1)
            )
            return self._read(connection, playlist_id, owner_id)

    def move_songs(
        self,
        playlist_id: str,
        owner_id: str,
        version: int | None,
        from_position: int,
        to_position: int,
        count: int = 1,
    ) -> Playlist:
        """Move the ``count`` entries starting at ``from_position`` so that the first of them
        ends up at ``to_position`` (positions of the playlist after the move; the block keeps
        its order). ``to_position`` equal to ``from_position`` changes nothing but the version.

        Raises:
            ContractError: the block or the target runs past the end.
            NotFoundError, PermissionDeniedError, PreconditionRequiredError,
            PreconditionFailedError: see ``_lock_for_write``.
        """
        with self._transaction() as connection:
            size = _lock_for_write(connection, playlist_id, owner_id, version)
            _check_range(from_position, count, size)
            if not 0 <= to_position <= size - count:
                raise ContractError(
                    f"to_position {to_position} is out of range: a block of {count} in a "
                    f"playlist of {size} songs can start at 0-{size - count}"
                )
            order = connection.scalars(
                select(playlist_songs.c.entry_id)
                .where(playlist_songs.c.playlist_id == playlist_id)
                .order_by(playlist_songs.c.position)
            ).all()
            block = order[from_position : from_position + count]
            rest = order[:from_position] + order[from_position + count :]
            moved = rest[:to_position] + block + rest[to_position:]
            changed = [
                {"entry": entry_id, "new_position": new}
                for new, entry_id in enumerate(moved)
                if order[new] != entry_id
            ]
            if changed:
                connection.execute(
                    update(playlist_songs)
                    .where(playlist_songs.c.entry_id == bindparam("entry"))
                    .values(position=bindparam("new_position")),
                    changed,
                )
            return self._read(connection, playlist_id, owner_id)


def _summary_query() -> Select:
    song_count = (
        select(func.count())
        .where(playlist_songs.c.playlist_id == playlists.c.playlist_id)
        .scalar_subquery()
    )
    return select(
        playlists.c.playlist_id,
        playlists.c.owner_id,
        playlists.c.name,
        playlists.c.description,
        playlists.c.is_public,
        playlists.c.version,
        song_count.label("song_count"),
        playlists.c.created_at,
        playlists.c.updated_at,
    )


def _lock_for_write(
    connection: Connection, playlist_id: str, owner_id: str, version: int | None
) -> int:
    """Lock the playlist row, check who writes and which version they read, bump the version.

    Returns the playlist's song count.

    Raises:
        NotFoundError: no such playlist, or another user's private one.
        PermissionDeniedError: another user's public playlist.
        PreconditionRequiredError: no version given (checked after access, so a missing
            ``If-Match`` reveals nothing about others' playlists).
        PreconditionFailedError: the version is not the current one.
    """
    row = connection.execute(
        select(playlists.c.owner_id, playlists.c.is_public, playlists.c.version)
        .where(playlists.c.playlist_id == playlist_id)
        .with_for_update()
    ).first()
    if row is None or not (row.is_public or row.owner_id == owner_id):
        raise NotFoundError(f"no playlist {playlist_id!r}")
    if row.owner_id != owner_id:
        raise PermissionDeniedError(
            f"playlist {playlist_id!r} is another listener's; only its owner may change it"
        )
    if version is None:
        raise PreconditionRequiredError(
            f'changing playlist {playlist_id!r} needs If-Match: "<version>" with the version '
            f"you read (its ETag)"
        )
    if version != row.version:
        raise PreconditionFailedError(
            f"playlist {playlist_id!r} is at version {row.version}, not {version}: someone "
            "changed it since you read it; read it again, then retry"
        )
    connection.execute(
        update(playlists)
        .where(playlists.c.playlist_id == playlist_id)
        .values(version=playlists.c.version + 1, updated_at=func.now())
    )
    return connection.execute(
        select(func.count()).where(playlist_songs.c.playlist_id == playlist_id)
    ).scalar_one()


def _check_batch(song_ids: Sequence[str]) -> None:
    if len(song_ids) > MAX_SONGS_PER_REQUEST:
        raise ContractError(
            f"at most {MAX_SONGS_PER_REQUEST} songs per request; {len(song_ids)} were sent"
        )
    for song_id in song_ids:
        check_text("song id", song_id, 64, min_length=1)


def _check_range(position: int, count: int, size: int) -> None:
    if count < 1 or position < 0 or position + count > size:
        span = (
            f"position {position}" if count == 1 else f"positions {position}-{position + count - 1}"
        )
        held = f"positions 0-{size - 1}" if size else "no songs"
        raise ContractError(f"{span} out of range: the playlist has {held}")


def _check_songs_exist(connection: Connection, song_ids: Sequence[str]) -> None:
    if not song_ids:
        return
    known = set(
        connection.scalars(select(songs.c.song_id).where(songs.c.song_id.in_(set(song_ids))))
    )
    unknown = list(dict.fromkeys(song_id for song_id in song_ids if song_id not in known))
    if unknown:
        raise ContractError(f"unknown song ids: {_quoted(unknown)}")


def _insert_entries(
    connection: Connection, playlist_id: str, song_ids: Sequence[str], first_position: int
) -> None:
    if not song_ids:
        return
    now = connection.execute(select(func.now())).scalar_one()  # the transaction's time
    connection.execute(
        insert(playlist_songs),
        [
            {
                "playlist_id": playlist_id,
                "position": first_position + offset,
                "song_id": song_id,
                "added_at": now,
            }
            for offset, song_id in enumerate(song_ids)
        ],
    )
