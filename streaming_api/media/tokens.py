"""Stream tokens: who may fetch which song's playlists, segments and key, until when.

A token is ``<payload>.<signature>``, both base64url without padding: the payload is the
JSON ``{"u": user_id, "s": song_id, "e": expiry (Unix seconds)}``, the signature is
HMAC-SHA256 of ``encore-stream-v1.<payload>`` under ``settings.media.stream_secret``.
Checked in constant time (``hmac.compare_digest``) before anything is read; a token is
URL-path safe, so it travels inside the playback paths and playlists need no query strings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from encore.settings import Settings
from streaming_api.errors import AuthenticationError

_DOMAIN = b"encore-stream-v1."
MAX_TOKEN_CHARS = 512


@dataclass(frozen=True)
class StreamGrant:
    user_id: str
    song_id: str
    expires_at: int
    """Unix seconds."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(settings: Settings, payload: str) -> bytes:
    secret = settings.media.stream_secret.get_secret_value().encode()
    return hmac.new(secret, _DOMAIN + payload.encode(), hashlib.sha256).digest()


def issue_stream_token(
    settings: Settings, user_id: str, song_id: str, now: float | None = None
) -> tuple[str, StreamGrant]:
    """A token letting ``user_id`` stream ``song_id`` for ``media.stream_token_ttl_s``."""
    expires_at = int(now if now is not None else time.time()) + settings.media.stream_token_ttl_s
    grant = StreamGrant(user_id=user_id, song_id=song_id, expires_at=expires_at)
    body = json.dumps({"u": user_id, "s": song_id, "e": expires_at}, separators=(",", ":"))
    payload = _b64encode(body.encode())
    return f"{payload}.{_b64encode(_signature(settings, payload))}", grant


def verify_stream_token(
    settings: Settings, token: str, song_id: str, now: float | None = None
) -> StreamGrant:
    """The grant of a valid, unexpired ``token`` for ``song_id``.

    Raises:
        AuthenticationError: malformed, tampered (signature mismatch), expired, or a token
            for another song.
    """
    payload, dot, signature = token.partition(".")
    if len(token) > MAX_TOKEN_CHARS or not token.isascii() or not (dot and payload and signature):
        raise AuthenticationError("malformed stream token; ask /api/v1/songs/{id}/stream again")
    # compared as text: base64's spare low bits would let several spellings decode alike
    expected = _b64encode(_signature(settings, payload))
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise AuthenticationError("invalid stream token (bad signature)")
    try:
        claims = json.loads(_b64decode(payload))
        grant = StreamGrant(
            user_id=str(claims["u"]), song_id=str(claims["s"]), expires_at=int(claims["e"])
        )
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise AuthenticationError("malformed stream token payload") from None
    if grant.expires_at <= (now if now is not None else time.time()):
        raise AuthenticationError("the stream token has expired; ask for the stream again")
    if not hmac.compare_digest(grant.song_id.encode(), song_id.encode()):
        raise AuthenticationError(f"this stream token is not for song {song_id!r}")
    return grant
