"""``encore content ingest``: generated masters to encrypted HLS, against real PostgreSQL.

The masters are made here with ffmpeg's tone and noise sources (``tests/media.py``); the
ffmpeg and ffprobe that run are the real ones.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from encore.db import create_engine, ids
from encore.db.schema import albums, artists, song_media, songs
from encore.errors import ContractError
from encore.settings import Settings, settings_env
from streaming_api.catalog.taxonomy import WORLDWIDE
from streaming_api.media import ingest as ingest_module
from streaming_api.media.ingest import (
    ALREADY_INGESTED,
    FAILED,
    INGESTED,
    IngestReport,
    ingest_folder,
    ingest_master,
)
from streaming_api.media.samples import write_catalog_masters
from streaming_api.media.storage import FsspecStorage, LocalStorage, open_storage
from tests.conftest import fresh_database
from tests.media import make_master, make_mp3, make_text_as_wav, make_truncated_flac

pytestmark = pytest.mark.integration

ARTIST, ALBUM = "Généric Band", "Test Tones"


def media_settings(platform: Settings, database: str, root: Path) -> Settings:
    settings = fresh_database(platform, database)
    return settings.model_copy(
        update={"media": settings.media.model_copy(update={"root": str(root), "ingest_workers": 2})}
    )


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def add_catalog_song(settings: Settings, title: str, territories: list[str]) -> str:
    """A catalog song with no media, as ``encore catalog load`` would leave it."""
    now = datetime.now(UTC)
    artist = ids.artist_id("Catalog Artist")
    album = ids.album_id(artist, "Catalog Album")
    song = ids.song_id(album, title)
    stamps = {"created_at": now, "updated_at": now}
    engine = create_engine(settings, pool_size=1)
    with engine.begin() as connection:
        if connection.execute(select(artists).where(artists.c.artist_id == artist)).first() is None:
            connection.execute(
                artists.insert().values(artist_id=artist, name="Catalog Artist", **stamps)
            )
            connection.execute(
                albums.insert().values(
                    album_id=album, artist_id=artist, title="Catalog Album", **stamps
                )
            )
        connection.execute(
            songs.insert().values(
                song_id=song, title=title, artist_id=artist, album_id=album, genre="rock",
                duration_ms=200_000, territories=territories, **stamps,
            )
        )  # fmt: skip
    engine.dispose()
    return song


@pytest.fixture(scope="module")
def ingested(
    platform: Settings, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, Path, IngestReport, list]:
    tmp = tmp_path_factory.mktemp("content")
    masters = tmp / "masters"
    make_master(
        masters / "tone.flac",
        title="Tone A",
        artist=ARTIST,
        album=ALBUM,
        seconds=4,
        genre="Ambient",
    )
    make_master(
        masters / "noise.wav", title="Noise B", artist=ARTIST, album=ALBUM, seconds=3, noise=True
    )
    make_truncated_flac(masters / "bad" / "cut.flac")
    make_mp3(masters / "bad" / "lossy.mp3")
    make_text_as_wav(masters / "bad" / "notes.wav")
    settings = media_settings(platform, "test_content_ingest", tmp / "media")
    seen: list = []
    report = ingest_folder(settings, masters, progress=seen.append)
    return settings, masters, report, seen  # fmt: skip


def outcome_of(report: IngestReport, name: str):
    return next(outcome for outcome in report.outcomes if outcome.master.name == name)


def test_tagged_masters_create_their_songs_and_renditions(ingested) -> None:
    settings, _, report, seen = ingested
    assert len(seen) == 5, "progress is called once per master"
    tone, noise = outcome_of(report, "tone.flac"), outcome_of(report, "noise.wav")
    assert (tone.status, noise.status) == (INGESTED, INGESTED), report.outcomes
    artist = ids.artist_id(ARTIST)
    album = ids.album_id(artist, ALBUM)
    assert tone.song_id == ids.song_id(album, "Tone A")
    assert noise.song_id == ids.song_id(album, "Noise B")
    engine = create_engine(settings, pool_size=1)
    with engine.connect() as connection:
        rows = {
            row.song_id: row
            for row in connection.execute(select(songs).where(songs.c.artist_id == artist))
        }
        media = {row.song_id: row for row in connection.execute(select(song_media))}
        assert connection.execute(select(artists.c.name)).scalars().all() == [ARTIST]
    engine.dispose()
    assert set(rows) == set(media) == {tone.song_id, noise.song_id}
    assert rows[tone.song_id].genre == "Ambient" and rows[noise.song_id].genre == "unknown"
    assert abs(rows[tone.song_id].duration_ms - 4000) < 50
    assert abs(rows[noise.song_id].duration_ms - 3000) < 50
    assert set(rows[tone.song_id].territories) == set(WORLDWIDE)  # the catalog's markets
    root = Path(settings.media.root)
    for song_id, row in media.items():
        assert rows[song_id].hls_manifest == row.manifest_path
        assert row.bitrates_kbps == [64, 128, 256]
        master = (root / row.manifest_path).read_text()
        inf = re.findall(r'#EXT-X-STREAM-INF:BANDWIDTH=(\d+),CODECS="mp4a\.40\.2"', master)
        bandwidths = [int(bandwidth) // 1000 for bandwidth in inf]
        assert len(bandwidths) == 3 and bandwidths == sorted(bandwidths)
        assert all(b >= k for b, k in zip(bandwidths, (64, 128, 256), strict=True))
        for kbps in (64, 128, 256):
            variant = (root / row.manifest_path).parent / str(kbps) / "index.m3u8"
            text = variant.read_text()
            assert "#EXT-X-KEY:METHOD=AES-128" in text and "#EXT-X-ENDLIST" in text
            durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+)", text)]
            assert max(durations) <= settings.media.segment_seconds + 0.5
        assert len((root / row.key_path).read_bytes()) == 16
    keys = [(root / row.key_path).read_bytes() for row in media.values()]
    assert keys[0] != keys[1], "a key per song"


def test_bad_masters_are_reported_and_leave_nothing(ingested) -> None:
    settings, _, report, _ = ingested
    reasons = {o.master.name: o.reason for o in report.outcomes if o.status == FAILED}
    assert set(reasons) == {"cut.flac", "lossy.mp3", "notes.wav"}
    assert "mp3" in reasons["lossy.mp3"] and "FLAC or WAV" in reasons["lossy.mp3"]
    assert "not a readable audio file" in reasons["notes.wav"]
    assert "decode" in reasons["cut.flac"] or "truncated" in reasons["cut.flac"]
    assert not report.ok
    root = Path(settings.media.root)
    assert len(list((root / "songs").iterdir())) == 2 and len(list((root / "keys").iterdir())) == 2
    assert files_under(settings.home / "tmp" / "ingest") == []
    engine = create_engine(settings, pool_size=1)
    with engine.connect() as connection:
        titles = connection.execute(select(songs.c.title)).scalars().all()
    engine.dispose()
    assert sorted(titles) == ["Noise B", "Tone A"], "no row for 'Cut' of the truncated FLAC"


def test_the_same_bytes_again_are_a_no_op(ingested) -> None:
    settings, masters, first, _ = ingested
    before = files_under(Path(settings.media.root))
    again = ingest_folder(settings, masters, workers=1)
    assert outcome_of(again, "tone.flac").status == ALREADY_INGESTED
    assert outcome_of(again, "tone.flac").song_id == outcome_of(first, "tone.flac").song_id
    assert outcome_of(again, "noise.wav").status == ALREADY_INGESTED
    assert files_under(Path(settings.media.root)) == before


def test_song_id_links_an_untagged_master(ingested, tmp_path: Path) -> None:
    settings = ingested[0]
    song = add_catalog_song(settings, "Licensed in France", ["FR"])
    master = make_master(
        tmp_path / "one" / "untagged.wav", title=None, artist=None, album=None, seconds=3
    )
    report = ingest_folder(settings, master.parent, song_id=song)
    assert [(o.status, o.song_id) for o in report.outcomes] == [(INGESTED, song)]
    engine = create_engine(settings, pool_size=1)
    with engine.connect() as connection:
        row = connection.execute(select(songs).where(songs.c.song_id == song)).one()
    engine.dispose()
    assert row.hls_manifest and row.territories == ["FR"] and abs(row.duration_ms - 3000) < 50


def test_untagged_master_without_song_id_and_unknown_song_id_fail(ingested, tmp_path: Path) -> None:
    settings = ingested[0]
    master = make_master(
        tmp_path / "untagged.flac", title="Only a title", artist=None, album=None, seconds=3
    )
    report = ingest_folder(settings, tmp_path)
    assert report.failed[0].reason and "artist, album tag" in report.failed[0].reason
    report = ingest_folder(settings, master, song_id="so-0000000000000000")
    assert report.failed[0].reason and "no song 'so-0000000000000000'" in report.failed[0].reason
    assert not (Path(settings.media.root) / "songs" / "so-0000000000000000").exists()
    make_master(tmp_path / "second.wav", title="T", artist="A", album="B", seconds=3)
    with pytest.raises(ContractError, match="links one master"):
        ingest_folder(settings, tmp_path, song_id="so-0000000000000000")


class KeyMoveFails(LocalStorage):
    """The renditions move into place, then the key cannot: a disk full, a lost bucket."""

    def put_file(self, local_file: Path, path: str) -> None:
        raise OSError("no space left on device (simulated)")


def test_a_failure_while_moving_into_place_rolls_back_rows_and_files(
    platform: Settings, tmp_path: Path
) -> None:
    settings = media_settings(platform, "test_content_rollback", tmp_path / "media")
    master = make_master(tmp_path / "m" / "t.flac", title="T", artist="A", album="B", seconds=3)
    engine = create_engine(settings, pool_size=1)
    job = ingest_module._Job(settings, engine, KeyMoveFails(tmp_path / "media"), None)
    outcome = ingest_master(job, master)
    assert outcome.status == FAILED and outcome.reason
    assert "OSError: no space left on device (simulated)" in outcome.reason
    with engine.connect() as connection:
        assert connection.execute(select(songs.c.song_id)).all() == []
        assert connection.execute(select(song_media.c.song_id)).all() == []
    engine.dispose()
    assert files_under(tmp_path / "media") == []
    assert ingest_folder(settings, master.parent).outcomes[0].status == INGESTED


def test_the_cli_reports_and_exits_1_when_a_master_failed(
    platform: Settings, tmp_path: Path
) -> None:
    settings = media_settings(platform, "test_content_cli", tmp_path / "media")
    make_master(
        tmp_path / "in" / "good.flac", title="Good", artist="CLI Band", album="CLI", seconds=3
    )
    make_text_as_wav(tmp_path / "in" / "bad.wav")
    encore = Path(sys.executable).with_name("encore")
    command = [str(encore), "content", "ingest", str(tmp_path / "in"), "--workers", "2"]
    env = settings_env(settings) | {"PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 1, first.stderr
    assert "good.flac" in first.stdout and "ingested" in first.stdout
    assert "bad.wav" in first.stdout and "not a readable audio file" in first.stdout
    (tmp_path / "in" / "bad.wav").unlink()
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already ingested" in second.stdout


def test_a_remote_root_goes_through_fsspec(platform: Settings, tmp_path: Path) -> None:
    """fsspec's in-memory filesystem stands in for s3:// (no S3 runs here): the same
    ``FsspecStorage`` code path, a real fsspec driver, nothing on the local disk."""
    settings = media_settings(platform, "test_content_fsspec", tmp_path / "unused")
    root = f"memory://encore-{tmp_path.name}/media"
    settings = settings.model_copy(
        update={"media": settings.media.model_copy(update={"root": root})}
    )
    storage = open_storage(settings)
    assert isinstance(storage, FsspecStorage)
    make_master(tmp_path / "in" / "r.flac", title="Remote", artist="R", album="R", seconds=3)
    (outcome,) = ingest_folder(settings, tmp_path / "in").outcomes
    assert outcome.status == INGESTED, outcome.reason
    engine = create_engine(settings, pool_size=1)
    with engine.connect() as connection:
        row = connection.execute(select(song_media)).one()
    engine.dispose()
    assert storage.read_bytes(row.manifest_path).startswith(b"#EXTM3U")
    assert len(storage.read_bytes(row.key_path)) == 16
    assert not (tmp_path / "unused").exists()


def test_generated_masters_link_to_the_catalog_songs_they_are_tagged_as(
    platform: Settings, tmp_path: Path
) -> None:
    settings = media_settings(platform, "test_content_catalog", tmp_path / "media")
    catalog = {add_catalog_song(settings, title, ["DE", "FR"]) for title in ("One", "Two")}
    masters = write_catalog_masters(settings, tmp_path / "in", count=3, seconds=3)
    assert len(masters) == 2 and {m.suffix for m in masters} == {".flac", ".wav"}
    report = ingest_folder(settings, tmp_path / "in")
    assert {(o.status, o.song_id) for o in report.outcomes} == {(INGESTED, s) for s in catalog}
    engine = create_engine(settings, pool_size=1)
    with engine.connect() as connection:
        rows = connection.execute(select(songs.c.song_id, songs.c.territories, songs.c.genre)).all()
    engine.dispose()
    assert {row.song_id for row in rows} == catalog, "linked, no new song"
    assert all(row.territories == ["DE", "FR"] and row.genre == "rock" for row in rows)
    assert write_catalog_masters(settings, tmp_path / "again") == [], "all have media now"


def test_two_copies_of_one_master_ingest_once(platform: Settings, tmp_path: Path) -> None:
    """Both copies start together on two workers; the unique content hash lets one commit."""
    settings = media_settings(platform, "test_content_copies", tmp_path / "media")
    master = make_master(
        tmp_path / "in" / "a.flac", title="Twice", artist="C", album="C", seconds=3
    )
    (tmp_path / "in" / "b.flac").write_bytes(master.read_bytes())
    report = ingest_folder(settings, tmp_path / "in", workers=2)
    assert sorted(o.status for o in report.outcomes) == [ALREADY_INGESTED, INGESTED], report
    assert len({o.song_id for o in report.outcomes}) == 1
    assert len(list((tmp_path / "media" / "songs").rglob("master.m3u8"))) == 1
    assert len(list((tmp_path / "media" / "keys").rglob("*.key"))) == 1
