"""Generated masters: ffmpeg's tone and noise sources, tagged, for the demo and the tests.

Nothing is downloaded. ``write_catalog_masters`` tags its masters with catalog songs'
title, artist and album, so ``encore content ingest`` links them to those songs.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sqlalchemy import select

from encore.db.schema import albums, artists, songs
from encore.settings import Settings


def write_master(
    path: Path,
    *,
    title: str | None,
    artist: str | None,
    album: str | None,
    seconds: float = 4,
    genre: str | None = None,
    noise: bool = False,
    frequency: int = 440,
) -> Path:
    """A FLAC or WAV master (by ``path``'s suffix) of a sine tone or pink noise, tagged."""
    source = (
        f"anoisesrc=d={seconds}:c=pink:a=0.3:r=44100"
        if noise
        else f"sine=frequency={frequency}:duration={seconds}:sample_rate=44100"
    )
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-ac", "2"]
    for name, value in (("title", title), ("artist", artist), ("album", album), ("genre", genre)):
        if value is not None:
            command += ["-metadata", f"{name}={value}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*command, str(path)], check=True, capture_output=True)
    return path


def write_catalog_masters(
    settings: Settings, folder: Path, count: int = 4, seconds: float = 6
) -> list[Path]:
    """Masters for the ``count`` most popular catalog songs without media, tagged with their
    names (alternately FLAC tones and WAV noise), in ``folder``."""
    from encore.db import create_engine

    engine = create_engine(settings, pool_size=1)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(songs.c.title, artists.c.name, albums.c.title.label("album"), songs.c.genre)
                .join(artists, songs.c.artist_id == artists.c.artist_id)
                .join(albums, songs.c.album_id == albums.c.album_id)
                .where(songs.c.hls_manifest.is_(None))
                .order_by(songs.c.popularity.desc(), songs.c.song_id)
                .limit(count)
            ).all()
    finally:
        engine.dispose()
    masters = []
    for index, row in enumerate(rows):
        stem = re.sub(r"[^A-Za-z0-9]+", "-", f"{row.name}-{row.title}").strip("-")[:80]
        suffix = ".flac" if index % 2 == 0 else ".wav"
        masters.append(
            write_master(
                folder / f"{index:02d}-{stem}{suffix}",
                title=row.title,
                artist=row.name,
                album=row.album,
                genre=row.genre,
                seconds=seconds,
                noise=index % 2 == 1,
                frequency=220 + 110 * index,
            )
        )
    return masters


def decoded_seconds(source: str, timeout_s: float = 120) -> tuple[int, float | None, str]:
    """Decode ``source`` (a file or an HLS URL) as a player would, with
    ``ffmpeg -v error -i <source> -f null -``: exit code, seconds decoded, stderr tail."""
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
