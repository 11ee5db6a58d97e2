"""``encore content ingest``: masters in a folder to encrypted HLS renditions in the catalog.

For each file (FLAC or WAV master; anything else is reported, not ingested):

1. SHA-256 of its bytes; a hash already in ``song_media`` is "already ingested" (a no-op).
2. ffprobe: format, codec, duration, tags (``streaming_api.media.probe``).
3. ffmpeg into a staging folder under ``<home>/tmp``: the AAC ladder, AES-128 with a new
   random key (``streaming_api.media.transcode``).
4. One transaction: link the song (its tags name it: the artist, album and song rows are
   created when missing, with stable ids from ``encore.db.ids``; or ``--song-id``), insert
   ``song_media``, set ``songs.hls_manifest`` and ``duration_ms``, move the renditions and
   the key under the media root, commit. Any failure removes what was moved and rolls the
   rows back: a master is either fully ingested or not at all.

Masters run on a bounded pool of ``media.ingest_workers`` threads, one ffmpeg each.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from encore.db import ids
from encore.db.schema import albums, artists, song_media, songs
from encore.errors import ContractError, EncoreError, NotFoundError
from encore.settings import Settings
from streaming_api.catalog.taxonomy import WORLDWIDE
from streaming_api.media.probe import MasterInfo, probe_master
from streaming_api.media.storage import MediaStorage, open_storage
from streaming_api.media.transcode import MASTER_PLAYLIST, new_key, transcode_to_hls

INGESTED, ALREADY_INGESTED, FAILED = "ingested", "already ingested", "failed"
UNKNOWN_GENRE = "unknown"
_HASH_CHUNK = 1 << 20

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MasterOutcome:
    master: Path
    status: str
    """``ingested``, ``already ingested`` or ``failed``."""
    song_id: str | None = None
    reason: str | None = None
    """Why it failed, for people."""


@dataclass
class IngestReport:
    outcomes: list[MasterOutcome] = field(default_factory=list)

    def with_status(self, status: str) -> list[MasterOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]

    @property
    def failed(self) -> list[MasterOutcome]:
        return self.with_status(FAILED)

    @property
    def ok(self) -> bool:
        return not self.failed


class _AlreadyIngested(Exception):
    def __init__(self, song_id: str) -> None:
        self.song_id = song_id
        super().__init__(song_id)


@dataclass(frozen=True)
class _Job:
    settings: Settings
    engine: Engine
    storage: MediaStorage
    song_id: str | None


def find_masters(folder: Path) -> list[Path]:
    """The files to ingest: ``folder`` itself if it is a file, else every visible file in it
    (recursively, sorted). Unsupported files are listed too, to be reported."""
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise NotFoundError(f"no folder or file {folder}")
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def ingest_folder(
    settings: Settings,
    folder: Path,
    song_id: str | None = None,
    workers: int | None = None,
    progress: Callable[[MasterOutcome], None] | None = None,
) -> IngestReport:
    """Ingest every master under ``folder`` (see the module docstring).

    ``song_id`` links the one master of ``folder`` to that song instead of its tags.
    ``progress`` is called once per master as it finishes. One master failing does not stop
    the others: its outcome says why.

    Raises:
        NotFoundError: ``folder`` does not exist.
        ContractError: ``song_id`` with other than exactly one file.
    """
    from encore.db import create_engine

    masters = find_masters(folder)
    if song_id is not None and len(masters) != 1:
        raise ContractError(f"--song-id links one master, but {folder} holds {len(masters)} files")
    pool_size = workers or settings.media.ingest_workers
    engine = create_engine(settings, pool_size=pool_size)
    job = _Job(settings=settings, engine=engine, storage=open_storage(settings), song_id=song_id)
    report = IngestReport()
    try:
        with ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="ingest") as pool:
            futures = [pool.submit(ingest_master, job, master) for master in masters]
            for future in as_completed(futures):
                outcome = future.result()
                report.outcomes.append(outcome)
                if progress is not None:
                    progress(outcome)
    finally:
        engine.dispose()
    report.outcomes.sort(key=lambda outcome: outcome.master)
    return report


def ingest_master(job: _Job, master: Path) -> MasterOutcome:
    """Ingest one master; a problem with the file or its link is a ``failed`` outcome."""
    try:
        return _ingest(job, master)
    except EncoreError as error:
        return MasterOutcome(master, FAILED, job.song_id, str(error))
    except OperationalError as error:
        log.warning("PostgreSQL is unreachable: %s", error.orig)
        return MasterOutcome(master, FAILED, job.song_id, "PostgreSQL is unreachable")
    except (OSError, subprocess.SubprocessError) as error:
        # an unreadable master, a full disk, a hung or missing ffmpeg: this master fails (its
        # rows and files already rolled back), the others go on
        log.warning("ingesting %s failed", master, exc_info=True)
        return MasterOutcome(master, FAILED, job.song_id, f"{type(error).__name__}: {error}")


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _song_with_hash(engine: Engine, sha256: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            select(song_media.c.song_id).where(song_media.c.content_hash == sha256)
        ).scalar()


def _ingest(job: _Job, master: Path) -> MasterOutcome:
    settings, storage = job.settings, job.storage
    sha256 = content_hash(master)
    if (existing := _song_with_hash(job.engine, sha256)) is not None:
        return MasterOutcome(master, ALREADY_INGESTED, existing)
    info = probe_master(master)
    staging_root = settings.home / "tmp" / "ingest"  # beside the media root: moves are renames
    staging_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=staging_root) as staging:
        key_file = Path(staging) / "key"
        key_file.touch(mode=0o600)  # readable by the API's user only, before the key is in it
        key_file.write_bytes(new_key())
        renditions = Path(staging) / "renditions"
        transcode_to_hls(
            master,
            renditions,
            key_file=key_file,
            ladder_kbps=list(settings.media.ladder_kbps),
            segment_seconds=settings.media.segment_seconds,
            expected_duration_s=info.duration_s,
            log_file=settings.home / "logs" / "content" / f"{sha256[:16]}.log",
        )
        placed: list[str] = []
        try:
            with job.engine.begin() as connection:
                song_id = _link_song(connection, info, job.song_id)
                folder = f"songs/{song_id}/{sha256[:16]}"
                key_path = f"keys/{song_id}/{sha256[:16]}.key"
                _record(connection, song_id, sha256, master, info, settings, folder, key_path)
                placed.append(folder)  # before the move: a partial copy is removed too
                storage.put_tree(renditions, folder)
                placed.append(key_path)
                storage.put_file(key_file, key_path)
        except _AlreadyIngested as done:
            return MasterOutcome(master, ALREADY_INGESTED, done.song_id)
        except IntegrityError:
            for path in placed:
                storage.remove(path)
            # the same bytes ingested meanwhile by another worker or process
            if (existing := _song_with_hash(job.engine, sha256)) is not None:
                return MasterOutcome(master, ALREADY_INGESTED, existing)
            # another master of the same song committed first
            raise ContractError("its song got media from another master meanwhile") from None
        except BaseException:
            for path in placed:
                storage.remove(path)
            raise
    return MasterOutcome(master, INGESTED, song_id)


def _link_song(connection: Connection, info: MasterInfo, song_id: str | None) -> str:
    """The song this master is, creating it (and its artist and album) from the tags."""
    if song_id is not None:
        found = connection.execute(select(songs.c.song_id).where(songs.c.song_id == song_id))
        if found.scalar() is None:
            raise NotFoundError(f"no song {song_id!r} in the catalog to link this master to")
        return song_id
    tags = info.tags
    missing = [name for name in ("title", "artist", "album") if not tags.get(name)]
    if missing:
        raise ContractError(
            f"the master has no {', '.join(missing)} tag: tag it, or link it with --song-id"
        )
    now = datetime.now(UTC)
    artist = ids.artist_id(tags["artist"])
    album = ids.album_id(artist, tags["album"])
    song = ids.song_id(album, tags["title"])
    stamps = {"created_at": now, "updated_at": now}
    connection.execute(
        insert(artists)
        .values(artist_id=artist, name=tags["artist"], **stamps)
        .on_conflict_do_nothing()
    )
    connection.execute(
        insert(albums)
        .values(album_id=album, artist_id=artist, title=tags["album"], **stamps)
        .on_conflict_do_nothing()
    )
    connection.execute(
        insert(songs)
        .values(
            song_id=song,
            title=tags["title"],
            artist_id=artist,
            album_id=album,
            genre=(tags.get("genre") or UNKNOWN_GENRE)[:64],
            duration_ms=round(info.duration_s * 1000),
            territories=list(WORLDWIDE),  # the catalog's markets, like a loaded song
            **stamps,
        )
        .on_conflict_do_nothing()
    )
    return song


def _record(
    connection: Connection,
    song_id: str,
    sha256: str,
    master: Path,
    info: MasterInfo,
    settings: Settings,
    folder: str,
    key_path: str,
) -> None:
    current = connection.execute(
        select(song_media.c.master_name, song_media.c.content_hash).where(
            song_media.c.song_id == song_id
        )
    ).first()
    if current is not None and current.content_hash == sha256:
        raise _AlreadyIngested(song_id)  # a copy of these bytes committed since our check
    if current is not None:
        raise ContractError(
            f"song {song_id!r} already has media (from {current.master_name!r}); "
            "a song has one master"
        )
    now = datetime.now(UTC)
    manifest = f"{folder}/{MASTER_PLAYLIST}"
    duration_ms = round(info.duration_s * 1000)
    connection.execute(
        song_media.insert().values(
            song_id=song_id,
            content_hash=sha256,
            master_name=master.name,
            manifest_path=manifest,
            key_path=key_path,
            bitrates_kbps=list(settings.media.ladder_kbps),
            duration_ms=duration_ms,
            ingested_at=now,
        )
    )
    # the catalog's duration becomes the real one: players show what they will decode
    connection.execute(
        update(songs)
        .where(songs.c.song_id == song_id)
        .values(hls_manifest=manifest, duration_ms=duration_ms, updated_at=now)
    )
