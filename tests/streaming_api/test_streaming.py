"""Streaming: stream URLs, the token-checked HLS routes, and a real client (ffmpeg) playing.

A real ``encore api`` serves songs ingested from generated masters, against real
PostgreSQL; ``ffmpeg -i <master url>`` fetches the playlists, the key and the segments
over HTTP and decodes them.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from encore import services
from encore.db import create_engine
from encore.db.schema import song_media
from encore.settings import Settings
from streaming_api.app import create_app
from streaming_api.catalog.taxonomy import WORLDWIDE
from streaming_api.errors import AuthenticationError, NotLicensedError
from streaming_api.media.hls import check_licensed, rewrite_master, rewrite_variant, segment_names
from streaming_api.media.ingest import INGESTED, ingest_folder
from streaming_api.media.storage import LocalStorage
from streaming_api.media.tokens import issue_stream_token, verify_stream_token
from tests.conftest import free_port
from tests.media import decoded_seconds, make_master
from tests.streaming_api.test_content_ingest import add_catalog_song, media_settings

TONE_SECONDS = 5.0


@dataclass
class Stream:
    base: str
    settings: Settings
    worldwide: str
    france_only: str
    not_ingested: str
    listeners: dict[str, dict[str, str]]
    """Authorization headers of listeners in DE, in FR, and with no country ("none")."""

    def media_row(self, song_id: str):
        engine = create_engine(self.settings, pool_size=1)
        with engine.connect() as connection:
            row = connection.execute(
                select(song_media).where(song_media.c.song_id == song_id)
            ).one()
        engine.dispose()
        return row

    def stream(self, song_id: str, listener: str = "DE") -> httpx.Response:
        return httpx.get(
            f"{self.base}/api/v1/songs/{song_id}/stream", headers=self.listeners[listener]
        )

    def master_url(self, song_id: str, listener: str = "DE") -> str:
        answer = self.stream(song_id, listener)
        assert answer.status_code == 200, answer.text
        return answer.json()["master_url"]


def register(base: str, country: str | None) -> dict[str, str]:
    username = f"listener-{uuid.uuid4().hex[:8]}"
    body = {"username": username, "password": "long enough pw"}
    if country:
        body["country"] = country
    assert httpx.post(f"{base}/api/v1/auth/register", json=body).status_code == 201
    credentials = {"username": username, "password": body["password"]}
    answer = httpx.post(f"{base}/api/v1/auth/token", data=credentials)
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture(scope="module")
def stream(platform: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stream]:
    tmp = tmp_path_factory.mktemp("streaming")
    settings = media_settings(platform, "test_streaming", tmp / "media")
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"port": free_port(), "workers": 1})}
    )
    make_master(
        tmp / "tagged" / "tone.flac",
        title="Stream Tone",
        artist="Stream Band",
        album="Streams",
        seconds=TONE_SECONDS,
    )
    (worldwide,) = ingest_folder(settings, tmp / "tagged").outcomes
    france_only = add_catalog_song(settings, "Only in France", ["FR"])
    make_master(tmp / "fr" / "fr.wav", title=None, artist=None, album=None, seconds=3, noise=True)
    (french,) = ingest_folder(settings, tmp / "fr", song_id=france_only).outcomes
    assert (worldwide.status, french.status) == (INGESTED, INGESTED)
    not_ingested = add_catalog_song(settings, "Not Yet Ingested", ["DE", "FR"])
    instance = f"api-streaming-{uuid.uuid4().hex[:6]}"
    with services.running(
        settings, "api", instance=instance, env={"ENCORE_DEVELOPMENT": "true"}
    ) as api:
        base = api.address(settings)
        listeners = {country: register(base, country) for country in ("DE", "FR")}
        listeners["none"] = register(base, None)
        yield Stream(base, settings, worldwide.song_id, france_only, not_ingested, listeners)


@pytest.mark.integration
def test_a_listener_decodes_the_whole_song_with_ffmpeg(stream: Stream) -> None:
    answer = stream.stream(stream.worldwide)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["master_url"].startswith(f"{stream.base}/api/v1/stream/{stream.worldwide}/")
    assert body["bitrates_kbps"] == [64, 128, 256]
    expires = datetime.fromisoformat(body["expires_at"])
    ttl = (expires - datetime.now(UTC)).total_seconds()
    assert (
        stream.settings.media.stream_token_ttl_s - 60
        < ttl
        <= stream.settings.media.stream_token_ttl_s
    )
    code, seconds, errors = decoded_seconds(body["master_url"])
    assert code == 0, errors
    assert seconds is not None and abs(seconds - TONE_SECONDS) < 0.3, (seconds, errors)


def tamper(token: str) -> str:
    """``token`` with one character of its signature changed (not the last: base64's spare
    low bits there may not change the bytes)."""
    at = len(token) - 5
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


def token_of(master_url: str) -> str:
    return master_url.rsplit("/", 2)[-2]


@pytest.mark.integration
def test_a_tampered_token_fails_in_ffmpeg_and_answers_401(stream: Stream) -> None:
    url = stream.master_url(stream.worldwide)
    token = token_of(url)
    tampered = url.replace(token, tamper(token))
    code, _, _ = decoded_seconds(tampered)
    assert code != 0
    assert httpx.get(tampered).status_code == 401
    # the payload rewritten to another listener, the signature kept
    signature = token.split(".")[1]
    forged_payload = issue_stream_token(stream.settings, "someone-else", stream.worldwide)[0]
    forged = url.replace(token, f"{forged_payload.split('.')[0]}.{signature}")
    answer = httpx.get(forged)
    assert answer.status_code == 401 and "signature" in answer.json()["detail"]


@pytest.mark.integration
def test_an_expired_token_fails_in_ffmpeg_and_answers_401(stream: Stream) -> None:
    short = stream.settings.model_copy(
        update={"media": stream.settings.media.model_copy(update={"stream_token_ttl_s": 3})}
    )
    token, _ = issue_stream_token(short, "anyone", stream.worldwide)
    url = f"{stream.base}/api/v1/stream/{stream.worldwide}/{token}/master.m3u8"
    # expiry is in whole seconds: a 1 s TTL can lapse before the first request under load
    # (seen in the clean-clone run), so give it 3 s and wait past them
    assert httpx.get(url).status_code == 200, "valid until it expires"
    time.sleep(4.1)
    answer = httpx.get(url)
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]
    code, _, _ = decoded_seconds(url)
    assert code != 0


@pytest.mark.integration
def test_playlists_carry_the_token_in_every_uri(stream: Stream) -> None:
    url = stream.master_url(stream.worldwide)
    prefix = url.removesuffix("/master.m3u8")
    master = httpx.get(url)
    assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert master.headers["cache-control"] == "no-store"
    variants = [line for line in master.text.splitlines() if line and not line.startswith("#")]
    assert variants == [f"{prefix}/{kbps}/index.m3u8" for kbps in (64, 128, 256)]
    assert master.text.count('CODECS="mp4a.40.2"') == 3
    variant = httpx.get(variants[1])
    assert variant.status_code == 200 and variant.headers["cache-control"] == "no-store"
    keys = re.findall(r'#EXT-X-KEY:METHOD=AES-128,URI="([^"]+)"', variant.text)
    assert keys == [f"{prefix}/key"]
    segments = [line for line in variant.text.splitlines() if line and not line.startswith("#")]
    assert segments and all(line.startswith(f"{prefix}/128/seg_") for line in segments)
    first = httpx.get(segments[0])
    assert first.status_code == 200 and first.headers["content-type"] == "video/mp2t"


@pytest.mark.integration
def test_segments_on_disk_are_encrypted(stream: Stream) -> None:
    row = stream.media_row(stream.worldwide)
    root = Path(stream.settings.media.root)
    folder = (root / row.manifest_path).parent / "64"
    iv = re.search(r"IV=0x([0-9a-fA-F]{32})", (folder / "index.m3u8").read_text()).group(1)
    segment = str(folder / "seg_00000.ts")
    code, seconds, _ = decoded_seconds(segment)
    assert code != 0 or not seconds, "a segment must not decode without its key"
    key = (root / row.key_path).read_bytes().hex()
    with_key = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-key", key, "-iv", iv, "-i", f"crypto:{segment}",
         "-f", "null", "-"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert with_key.returncode == 0, with_key.stderr


@pytest.mark.integration
def test_the_key_is_given_only_to_a_valid_token_of_that_song(stream: Stream) -> None:
    row = stream.media_row(stream.worldwide)
    url = stream.master_url(stream.worldwide)
    key = httpx.get(url.replace("/master.m3u8", "/key"))
    assert key.status_code == 200 and key.headers["cache-control"] == "no-store"
    assert key.headers["content-type"] == "application/octet-stream"
    assert key.content == (Path(stream.settings.media.root) / row.key_path).read_bytes()
    # a valid token of the French song (FR listener) does not open the worldwide song's key
    other = token_of(stream.master_url(stream.france_only, "FR"))
    answer = httpx.get(f"{stream.base}/api/v1/stream/{stream.worldwide}/{other}/key")
    assert answer.status_code == 401 and "not for song" in answer.json()["detail"]
    token = token_of(url)
    answer = httpx.get(f"{stream.base}/api/v1/stream/{stream.worldwide}/{tamper(token)}/key")
    assert answer.status_code == 401


def test_storage_refuses_paths_outside_the_media_root(tmp_path: Path) -> None:
    # the HTTP cases below never reach storage (routing refuses them first): this is the
    # last line of defence itself
    (tmp_path / "media").mkdir()
    (tmp_path / "secret").write_text("not media")
    storage = LocalStorage(tmp_path / "media")
    for path in ("../secret", "songs/../../secret", "/etc/passwd", ""):
        with pytest.raises(ValueError, match="must be relative"):
            storage.read_bytes(path)


@pytest.mark.integration
def test_path_parameters_are_validated_never_joined_raw(stream: Stream) -> None:
    prefix = stream.master_url(stream.worldwide).removesuffix("/master.m3u8")
    for attempt in ("..%2F..%2F..%2Fkeys", "..%2Fkey", "index.m3u8x", "seg_1.ts%00"):
        assert httpx.get(f"{prefix}/64/{attempt}").status_code in (404, 422), attempt
    assert httpx.get(f"{prefix}/64/seg_99999.ts").status_code == 404, "not in the playlist"
    assert httpx.get(f"{prefix}/96/index.m3u8").status_code == 404, "not in the ladder"
    assert httpx.get(f"{stream.base}/api/v1/stream/so%2F..%2Fx/t/key").status_code in (404, 422)
    # the token is checked first: a bad token for a song without media is 401, not 404
    bad = f"{stream.base}/api/v1/stream/{stream.not_ingested}/not-a-token/master.m3u8"
    assert httpx.get(bad).status_code == 401


@pytest.mark.integration
def test_who_may_stream_what(stream: Stream) -> None:
    service = {"Authorization": f"Bearer {stream.settings.api.service_token.get_secret_value()}"}
    url = f"{stream.base}/api/v1/songs/{stream.worldwide}/stream"
    assert httpx.get(url, headers=service).status_code == 403
    assert httpx.get(url).status_code == 401
    assert stream.stream("so-0000000000000000").status_code == 404
    answer = stream.stream(stream.not_ingested)
    assert answer.status_code == 404 and "no media" in answer.json()["detail"]
    answer = stream.stream(stream.france_only, "DE")
    assert answer.status_code == 451 and "not licensed in DE" in answer.json()["detail"]
    assert stream.stream(stream.france_only, "FR").status_code == 200
    # no country on file: worldwide songs stream, territory-restricted ones do not
    assert stream.stream(stream.worldwide, "none").status_code == 200
    answer = stream.stream(stream.france_only, "none")
    assert answer.status_code == 451 and "no country" in answer.json()["detail"]


@pytest.mark.integration
def test_the_schema_documents_the_streaming_answers(stream: Stream) -> None:
    from fastapi.testclient import TestClient

    schema = TestClient(create_app(stream.settings)).get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths["/api/v1/songs/{song_id}/stream"]["get"]["responses"]) == {
        "200", "401", "403", "404", "422", "451", "503"
    }  # fmt: skip
    key = paths["/api/v1/stream/{song_id}/{token}/key"]["get"]["responses"]
    assert set(key["200"]["content"]) == {"application/octet-stream"}
    assert set(key["401"]["content"]) == {"application/json"}


# Unit tests of the token, the licensing rule and the rewriting: no services.

SETTINGS = Settings(development=True)


def test_a_token_verifies_for_its_song_until_it_expires() -> None:
    token, grant = issue_stream_token(SETTINGS, "ada", "so-1", now=1_000)
    assert verify_stream_token(SETTINGS, token, "so-1", now=1_000 + 10) == grant
    assert grant.expires_at == 1_000 + SETTINGS.media.stream_token_ttl_s
    with pytest.raises(AuthenticationError, match="expired"):
        verify_stream_token(SETTINGS, token, "so-1", now=grant.expires_at)
    with pytest.raises(AuthenticationError, match="not for song 'so-2'"):
        verify_stream_token(SETTINGS, token, "so-2", now=1_000)


def test_a_token_under_another_secret_or_altered_is_refused() -> None:
    token, _ = issue_stream_token(SETTINGS, "ada", "so-1")
    other = SETTINGS.model_copy(
        update={"media": SETTINGS.media.model_copy(update={"stream_secret": SecretStr("x" * 40)})}
    )
    with pytest.raises(AuthenticationError, match="bad signature"):
        verify_stream_token(other, token, "so-1")
    payload, signature = token.split(".")
    longer, _ = issue_stream_token(
        SETTINGS.model_copy(
            update={"media": SETTINGS.media.model_copy(update={"stream_token_ttl_s": 10**6})}
        ),
        "ada",
        "so-1",
    )
    for forged in (
        f"{longer.split('.')[0]}.{signature}",  # a later expiry, the old signature
        tamper(token),
        "",
        ".",
        "abc",
        f"{payload}.",
        f"{payload}.{signature}.x",
        f"{payload}.é",
        f"{payload}.{signature}\udcff",
        f"{payload}.{signature[:-1]}{chr(ord(signature[-1]) ^ 1)}",  # another spelling
        "x" * 600,
    ):
        with pytest.raises(AuthenticationError):
            verify_stream_token(SETTINGS, forged, "so-1")


def test_licensing_by_country_and_with_no_country() -> None:
    worldwide = list(WORLDWIDE)  # the catalog's markets
    check_licensed("so-1", ["FR", "DE"], "FR")
    check_licensed("so-1", worldwide, None)
    with pytest.raises(NotLicensedError, match="not licensed in GB"):
        check_licensed("so-1", ["FR", "DE"], "GB")
    with pytest.raises(NotLicensedError, match="no country on file"):
        check_licensed("so-1", worldwide[:-1], None)


def test_rewriting_makes_every_uri_absolute_and_tokened() -> None:
    base = "http://api/api/v1/stream/so-1/TOKEN"
    master = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=70400,CODECS="mp4a.40.2"\n64/index.m3u8\n'
    assert rewrite_master(master, base).splitlines()[-1] == f"{base}/64/index.m3u8"
    variant = (
        "#EXTM3U\n"
        '#EXT-X-KEY:METHOD=AES-128,URI="key",IV=0x00000000000000000000000000000001\n'
        "#EXTINF:6.0,\nseg_00000.ts\n#EXTINF:1.0,\nseg_00001.ts\n#EXT-X-ENDLIST\n"
    )
    rewritten = rewrite_variant(variant, base, 64)
    assert f'URI="{base}/key",IV=0x00000000000000000000000000000001' in rewritten
    assert [line for line in rewritten.splitlines() if not line.startswith("#")] == [
        f"{base}/64/seg_00000.ts",
        f"{base}/64/seg_00001.ts",
    ]
    assert segment_names(variant) == {"seg_00000.ts", "seg_00001.ts"}
