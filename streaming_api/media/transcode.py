"""One master to an AES-128-encrypted AAC HLS ladder, with one ffmpeg run.

Output folder layout (the ``renditions`` folder)::

    master.m3u8                 #EXT-X-STREAM-INF (BANDWIDTH, CODECS) per bitrate
    <kbps>/index.m3u8           VOD variant playlist, #EXT-X-KEY URI="key" (a placeholder)
    <kbps>/seg_00000.ts ...     MPEG-TS segments of AAC, AES-128-CBC encrypted

The key URI is a placeholder because the real one carries a listener's stream token: the
playback routes rewrite it (and every other URI) when they serve a playlist.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

from encore.errors import ContractError

MASTER_PLAYLIST = "master.m3u8"
VARIANT_PLAYLIST = "index.m3u8"
KEY_URI_PLACEHOLDER = "key"
SEGMENT_NAME = re.compile(r"^seg_\d{5,9}\.ts$")
# a decoded length this much shorter than the stated one means a truncated master
MAX_MISSING_S = 0.5
_EXTINF = re.compile(r"^#EXTINF:([0-9.]+)", re.MULTILINE)


class TranscodeError(ContractError):
    """ffmpeg could not turn the master into the ladder (a corrupt or truncated file)."""


def new_key() -> bytes:
    """A random AES-128 key: one per song."""
    return secrets.token_bytes(16)


def transcode_to_hls(
    master: Path,
    out_dir: Path,
    *,
    key_file: Path,
    ladder_kbps: list[int],
    segment_seconds: int,
    expected_duration_s: float,
    log_file: Path,
    timeout_s: float = 600,
) -> None:
    """Write the encrypted ladder of ``master`` into ``out_dir`` (see the module docstring).

    ``key_file`` holds the 16-byte key; ffmpeg's output goes to ``log_file``, never the
    terminal. ``-xerror`` stops at the first decoding error, and a ladder much shorter than
    ``expected_duration_s`` is refused too (a FLAC cut at a frame boundary decodes cleanly).

    Raises:
        TranscodeError: ffmpeg failed or produced less audio than the master states.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    key_info = out_dir.parent / "key_info"
    iv = secrets.token_hex(16)
    key_info.write_text(f"{KEY_URI_PLACEHOLDER}\n{key_file}\n{iv}\n")
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-xerror", "-y"]
    command += ["-i", str(master)]
    for _ in ladder_kbps:
        command += ["-map", "0:a:0"]
    command += ["-c:a", "aac", "-ac", "2", "-ar", "44100"]
    for index, kbps in enumerate(ladder_kbps):
        command += [f"-b:a:{index}", f"{kbps}k"]
    command += [
        "-f", "hls",
        "-hls_time", str(segment_seconds),
        "-hls_playlist_type", "vod",
        "-hls_key_info_file", str(key_info),
        "-hls_segment_filename", str(out_dir / "%v" / "seg_%05d.ts"),
        "-master_pl_name", MASTER_PLAYLIST,
        "-var_stream_map", " ".join(f"a:{i},name:{k}" for i, k in enumerate(ladder_kbps)),
        str(out_dir / "%v" / VARIANT_PLAYLIST),
    ]  # fmt: skip
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        try:
            result = subprocess.run(command, stdout=log, stderr=log, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as error:
            raise TranscodeError(f"ffmpeg ran over {timeout_s:.0f} s (log: {log_file})") from error
    key_info.unlink(missing_ok=True)
    if result.returncode != 0:
        raise TranscodeError(
            f"ffmpeg could not decode the master (exit {result.returncode}; log: {log_file})"
        )
    for kbps in ladder_kbps:
        playlist = out_dir / str(kbps) / VARIANT_PLAYLIST
        produced = sum(float(d) for d in _EXTINF.findall(playlist.read_text()))
        if produced < expected_duration_s - MAX_MISSING_S:
            raise TranscodeError(
                f"the master states {expected_duration_s:.2f} s but only {produced:.2f} s "
                "decode: it is truncated"
            )
