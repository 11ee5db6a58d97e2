"""What a master is: ffprobe's container, codec, duration and tags, checked for ingestion."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from encore.errors import ContractError

# Lossless masters only: a lossy master would be transcoded twice.
ACCEPTED_FORMATS = {"flac": {"flac"}, "wav": {"pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le"}}
PROBE_TIMEOUT_S = 30


class UnsupportedMasterError(ContractError):
    """A file that is not a readable FLAC or WAV master (the message says why)."""


@dataclass(frozen=True)
class MasterInfo:
    format_name: str
    codec: str
    duration_s: float
    tags: dict[str, str] = field(default_factory=dict)
    """Tag names lower-cased (``title``, ``artist``, ``album``, ``genre``...)."""


def probe_master(path: Path) -> MasterInfo:
    """Read ``path`` with ffprobe and check that it is a FLAC or WAV master with audio.

    Raises:
        UnsupportedMasterError: ffprobe cannot read it, or it is another format or codec.
    """
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1:] or ["unknown error"]
        raise UnsupportedMasterError(f"not a readable audio file (ffprobe: {reason[0]})")
    described = json.loads(result.stdout or "{}")
    container = described.get("format", {})
    format_name = container.get("format_name", "")
    audio = [s for s in described.get("streams", []) if s.get("codec_type") == "audio"]
    if format_name not in ACCEPTED_FORMATS:
        raise UnsupportedMasterError(
            f"unsupported format {format_name!r}; masters must be FLAC or WAV"
        )
    if not audio:
        raise UnsupportedMasterError(f"no audio stream in this {format_name} file")
    codec = audio[0].get("codec_name", "")
    if codec not in ACCEPTED_FORMATS[format_name]:
        raise UnsupportedMasterError(f"unsupported {format_name} codec {codec!r}")
    try:
        duration_s = float(container.get("duration") or audio[0].get("duration"))
    except (TypeError, ValueError):
        raise UnsupportedMasterError("the file states no duration") from None
    if duration_s <= 0:
        raise UnsupportedMasterError(f"the file states a duration of {duration_s} s")
    tags = {str(k).lower(): str(v).strip() for k, v in container.get("tags", {}).items()}
    return MasterInfo(format_name=format_name, codec=codec, duration_s=duration_s, tags=tags)
