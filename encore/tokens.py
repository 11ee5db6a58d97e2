"""Listener JWTs and the service token: issued by the listener API, checked by every API.

A bearer token is either ``settings.api.service_token`` (compared in constant time), which
acts for the platform, or a listener JWT (HS256, signed with ``settings.api.jwt_secret``,
``sub`` = the listener's ``user_id``). The listener API issues them at login; the
recommendation service checks them with the same code, so both agree on who is calling.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

import jwt

from encore.errors import AuthenticationError, ConfigurationError, PermissionDeniedError
from encore.settings import ApiSettings, Settings

JWT_ALGORITHM = "HS256"
# RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output
JWT_SECRET_MIN_BYTES = 32


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a trusted service, or one listener."""

    kind: str  # "service" | "listener"
    user_id: str | None = None

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    def listener_id(self) -> str:
        """The listener's user id; a route only a listener may call refuses the service.

        Raises:
            PermissionDeniedError: the caller is the service token (it acts for no one).
        """
        if self.is_service or self.user_id is None:
            raise PermissionDeniedError(
                "this route needs a listener token; the service token acts for no listener"
            )
        return self.user_id

    def check_may_post_for(self, user_ids: set[str]) -> None:
        """Raises ``PermissionDeniedError`` if a listener posts for someone else."""
        if self.is_service:
            return
        others = sorted(user_ids - {self.user_id})
        if others:
            raise PermissionDeniedError(
                f"listener {self.user_id!r} may post only their own events; the request "
                f"holds events of {others[:5]}{'...' if len(others) > 5 else ''}"
            )


def issue_token(settings: Settings, user_id: str) -> str:
    """A listener JWT for ``user_id``, valid for ``settings.api.jwt_ttl_seconds``."""
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + settings.api.jwt_ttl_seconds}
    return jwt.encode(claims, settings.api.jwt_secret.get_secret_value(), algorithm=JWT_ALGORITHM)


def authenticate(settings: Settings, authorization: str | None) -> Principal:
    """The caller named by an ``Authorization: Bearer <token>`` header.

    Raises:
        AuthenticationError: the header is missing, not a bearer token, or the token is
            neither the service token nor a valid, unexpired listener JWT.
    """
    if not authorization:
        raise AuthenticationError("missing Authorization header; send 'Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    if hmac.compare_digest(token.encode(), settings.api.service_token.get_secret_value().encode()):
        return Principal(kind="service")
    try:
        claims = jwt.decode(
            token,
            settings.api.jwt_secret.get_secret_value(),
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise AuthenticationError("the token has expired; get a new one") from error
    except jwt.InvalidTokenError as error:
        raise AuthenticationError(f"invalid token: {error}") from error
    return Principal(kind="listener", user_id=str(claims["sub"]))


def token_secret_problems(settings: Settings) -> list[str]:
    """The token settings that are built-in defaults or too weak (empty in development)."""
    if settings.development:
        return []
    defaults = ApiSettings()
    problems = []
    token = settings.api.service_token.get_secret_value()
    if token == defaults.service_token.get_secret_value():
        problems.append("ENCORE_API__SERVICE_TOKEN (the built-in default is in use)")
    elif not token:
        problems.append("ENCORE_API__SERVICE_TOKEN (it is empty)")
    secret = settings.api.jwt_secret.get_secret_value()
    rule = f"at least {JWT_SECRET_MIN_BYTES} bytes"
    if secret == defaults.jwt_secret.get_secret_value():
        problems.append(f"ENCORE_API__JWT_SECRET ({rule}; the built-in default is in use)")
    elif len(secret.encode()) < JWT_SECRET_MIN_BYTES:
        problems.append(f"ENCORE_API__JWT_SECRET ({rule}; it has {len(secret.encode())})")
    return problems


def check_token_secrets(settings: Settings) -> None:
    """Refuse to check tokens with a default or weak secret (skipped in development).

    Raises:
        ConfigurationError: one line naming the settings to set.
    """
    problems = token_secret_problems(settings)
    if problems:
        raise ConfigurationError(
            "refusing to start with default or weak token secrets: set "
            + " and ".join(problems)
            + ", or set ENCORE_DEVELOPMENT=true for local development"
        )
