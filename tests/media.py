"""Test masters: the generated ones of ``streaming_api.media.samples`` plus broken files.

A few seconds each, so ingesting and decoding them keeps the tests quick.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from streaming_api.media.samples import decoded_seconds, write_master

make_master = write_master
__all__ = ["decoded_seconds", "make_master"]


def make_truncated_flac(path: Path, seconds: float = 4) -> Path:
    """A FLAC whose header states ``seconds`` but whose frames stop half-way."""
    make_master(path, title="Cut", artist="Broken Files", album="Damage", seconds=seconds)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_mp3(path: Path, seconds: float = 3) -> Path:
    """A lossy file: not a master."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"sine=duration={seconds}", "-metadata", "title=Lossy", "-metadata", "artist=X",
         "-metadata", "album=Y", str(path)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return path


def make_text_as_wav(path: Path) -> Path:
    """A text file named ``.wav``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not audio, whatever its name says\n" * 20)
    return path
