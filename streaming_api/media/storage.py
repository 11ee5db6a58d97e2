"""Where renditions and keys live: the media root, local or any fsspec URL (``s3://...``).

Paths handed to a storage are relative POSIX paths (``songs/so-.../master.m3u8``) built by
Encore, never by a client; ``LocalStorage`` still refuses any that would leave its root.
The tests run the local storage, and ``FsspecStorage`` on fsspec's ``memory://``; it needs
the protocol's driver installed (``s3fs`` for ``s3://``) and has not met a real bucket.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import Protocol

from encore.errors import ConfigurationError, NotFoundError
from encore.settings import Settings


class MediaStorage(Protocol):
    def read_bytes(self, path: str) -> bytes:
        """The file's bytes. Raises ``NotFoundError`` if there is none."""
        ...

    def put_tree(self, local_dir: Path, path: str) -> None:
        """Move or copy the local folder ``local_dir`` to ``path``, replacing what is there.

        Callers hold the database row that owns ``path`` (ingestion inserts it first), so
        anything found there is an orphan of an interrupted run, never another's media."""
        ...

    def put_file(self, local_file: Path, path: str) -> None: ...

    def remove(self, path: str) -> None:
        """Remove the file or folder ``path`` if it exists."""
        ...


def _relative(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"media path {path!r} must be relative, without '..'")
    return relative


class LocalStorage:
    """A folder on this machine (``<home>/media`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _local(self, path: str) -> Path:
        return self.root.joinpath(*_relative(path).parts)

    def read_bytes(self, path: str) -> bytes:
        try:
            return self._local(path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
            raise NotFoundError(f"no media file {path!r}") from error

    def put_tree(self, local_dir: Path, path: str) -> None:
        target = self._local(path)
        if target.exists():
            shutil.rmtree(target)  # left by a run killed between the move and its commit
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(local_dir, target)  # a rename when the temp dir is on the same disk

    def put_file(self, local_file: Path, path: str) -> None:
        target = self._local(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(local_file, target)

    def remove(self, path: str) -> None:
        target = self._local(path)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


class FsspecStorage:
    """A remote root (``s3://bucket/prefix``) through fsspec (S3 itself untested here)."""

    def __init__(self, url: str, options: dict[str, str]) -> None:
        import fsspec

        protocol = url.split("://", 1)[0]
        try:
            self.fs = fsspec.filesystem(protocol, **options)
        except (ImportError, ValueError) as error:
            raise ConfigurationError(
                f"media.root {url!r} needs the fsspec driver for {protocol!r} "
                f"(for s3://, install s3fs): {error}"
            ) from error
        self.root = url.rstrip("/")

    def _url(self, path: str) -> str:
        return f"{self.root}/{_relative(path)}"

    def read_bytes(self, path: str) -> bytes:
        try:
            return self.fs.cat_file(self._url(path))
        except FileNotFoundError as error:
            raise NotFoundError(f"no media file {path!r}") from error

    def put_tree(self, local_dir: Path, path: str) -> None:
        self.fs.put(f"{local_dir}/", self._url(path), recursive=True)

    def put_file(self, local_file: Path, path: str) -> None:
        self.fs.put_file(str(local_file), self._url(path))

    def remove(self, path: str) -> None:
        url = self._url(path)
        if self.fs.exists(url):
            self.fs.rm(url, recursive=True)


def open_storage(settings: Settings) -> MediaStorage:
    """The storage of ``settings.media.root`` (empty: ``<home>/media``)."""
    root = settings.media.root
    if "://" in root and not root.startswith("file://"):
        return FsspecStorage(root, settings.media.storage_options)
    local = Path(root.removeprefix("file://")) if root else settings.home / "media"
    return LocalStorage(local.expanduser().resolve())
