"""Test masters: the generated ones of ``streaming_api.media.samples`` plus broken files.

A few seconds each, so ingesting and decoding them keeps the tests quick.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from streaming_api.media.samples import write_master

make_master = write_master


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


def decoded_seconds(source: str, timeout_s: float = 120) -> tuple[int, float | None, str]:
    """``ffmpeg -v error -i <source> -f null -``: exit code, seconds decoded, stderr tail."""
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-stats", "-i", source,
         "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )  # fmt: skip

    times = re.findall(r"time=(\d+):(\d+):([\d.]+)", result.stderr)
    seconds = None
    if times:
        hours, minutes, secs = times[-1]
        seconds = int(hours) * 3600 + int(minutes) * 60 + float(secs)
    return result.returncode, seconds, result.stderr[-2000:]
