"""Who may post: listeners with a JWT, and trusted services with the service token.

A bearer token is either ``settings.api.service_token`` (compared in constant time), which
may post events for any user, or a listener JWT (HS256, signed with
``settings.api.jwt_secret``, ``sub`` = the listener's ``user_id``), which may post only that
listener's events. Passwords are hashed with scrypt from the standard library.

Both secrets have built-in defaults so that a checkout runs as it is; ``check_secrets``
refuses them (and a JWT secret too short for HS256) unless ``settings.development`` is on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from encore.errors import ConfigurationError
from encore.settings import MediaSettings, Settings
from encore.tokens import (  # noqa: F401 (the API's names for the shared token code)
    JWT_ALGORITHM,
    JWT_SECRET_MIN_BYTES,
    Principal,
    authenticate,
    issue_token,
    token_secret_problems,
)

# scrypt cost: n=2**14, r=8 takes ~16 MiB and a few tens of ms, the interactive-login
# setting recommended by the scrypt paper and OWASP.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` with a random 16-byte salt (base64 parts)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return "$".join(
        ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(expected),
    )
    return hmac.compare_digest(actual, expected)


def check_secrets(settings: Settings) -> None:
    """Refuse to serve with a built-in default secret or a short JWT secret.

    Skipped when ``settings.development`` is on (the tests, the demo, a developer's machine).

    Raises:
        ConfigurationError: one line naming the settings to set.
    """
    if settings.development:
        return
    problems = token_secret_problems(settings)
    rule = f"at least {JWT_SECRET_MIN_BYTES} bytes"
    stream = settings.media.stream_secret.get_secret_value()
    if stream == MediaSettings().stream_secret.get_secret_value():
        problems.append(f"ENCORE_MEDIA__STREAM_SECRET ({rule}; the built-in default is in use)")
    elif len(stream.encode()) < JWT_SECRET_MIN_BYTES:
        problems.append(f"ENCORE_MEDIA__STREAM_SECRET ({rule}; it has {len(stream.encode())})")
    if problems:
        raise ConfigurationError(
            "the API refuses to start with default or weak secrets: set "
            + " and ".join(problems)
            + ", or set ENCORE_DEVELOPMENT=true for local development"
        )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
