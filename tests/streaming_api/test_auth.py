"""Tokens, passwords and the secrets the API refuses (no services)."""

from __future__ import annotations

import jwt
import pytest
from pydantic import SecretStr

from encore.errors import ConfigurationError
from encore.settings import Settings
from streaming_api.auth import (
    JWT_SECRET_MIN_BYTES,
    Principal,
    authenticate,
    check_secrets,
    hash_password,
    issue_token,
    verify_password,
)
from streaming_api.errors import AuthenticationError, PermissionDeniedError


@pytest.fixture()
def settings() -> Settings:
    return Settings(api={"service_token": "svc-token", "jwt_secret": "s" * 40})


def test_password_hash_verifies_and_is_salted() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("correct horse", first)
    assert not verify_password("wrong horse", first)
    assert not verify_password("correct horse", "md5$abc")


def test_service_token_is_a_service(settings: Settings) -> None:
    assert authenticate(settings, "Bearer svc-token").is_service


def test_listener_token_names_its_user(settings: Settings) -> None:
    principal = authenticate(settings, f"Bearer {issue_token(settings, 'u-42')}")
    assert principal == Principal(kind="listener", user_id="u-42")


@pytest.mark.parametrize(
    "header", [None, "", "Basic abc", "Bearer", "Bearer svc-token-x", "Bearer not.a.jwt"]
)
def test_bad_headers_are_401(settings: Settings, header: str | None) -> None:
    with pytest.raises(AuthenticationError):
        authenticate(settings, header)


def test_expired_and_foreign_tokens_are_401(settings: Settings) -> None:
    expired = settings.model_copy(
        update={"api": settings.api.model_copy(update={"jwt_ttl_seconds": -10})}
    )
    with pytest.raises(AuthenticationError, match="expired"):
        authenticate(settings, f"Bearer {issue_token(expired, 'u1')}")
    forged = jwt.encode({"sub": "u1", "exp": 2**40}, "another-secret-" * 3, algorithm="HS256")
    with pytest.raises(AuthenticationError):
        authenticate(settings, f"Bearer {forged}")
    other = settings.model_copy(
        update={"api": settings.api.model_copy(update={"jwt_secret": SecretStr("t" * 40)})}
    )
    with pytest.raises(AuthenticationError):
        authenticate(settings, f"Bearer {issue_token(other, 'u1')}")


def test_listener_may_post_only_own_events() -> None:
    listener = Principal(kind="listener", user_id="u1")
    listener.check_may_post_for({"u1"})
    with pytest.raises(PermissionDeniedError, match="u2"):
        listener.check_may_post_for({"u1", "u2"})
    Principal(kind="service").check_may_post_for({"u1", "u2"})


def api_settings(development: bool, stream_secret: str | None = "s" * 32, **api: str) -> Settings:
    # explicit values win over ENCORE_* variables a platform fixture may have exported
    media = {"stream_secret": stream_secret} if stream_secret else {}
    return Settings(development=development, api=api, media=media)


def test_default_secrets_are_refused_outside_development() -> None:
    with pytest.raises(ConfigurationError) as refused:
        check_secrets(api_settings(development=False, stream_secret=None))
    message = str(refused.value)
    assert "\n" not in message
    assert "ENCORE_API__SERVICE_TOKEN" in message and "ENCORE_API__JWT_SECRET" in message
    assert "ENCORE_MEDIA__STREAM_SECRET" in message
    assert f"at least {JWT_SECRET_MIN_BYTES} bytes" in message
    assert "ENCORE_DEVELOPMENT=true" in message


def test_each_default_secret_is_named_alone() -> None:
    with pytest.raises(ConfigurationError) as refused:
        check_secrets(api_settings(development=False, jwt_secret="k" * 32))
    assert "ENCORE_API__SERVICE_TOKEN" in str(refused.value)
    assert "ENCORE_API__JWT_SECRET" not in str(refused.value)
    with pytest.raises(ConfigurationError) as refused:
        check_secrets(api_settings(development=False, service_token="svc-token"))
    assert "ENCORE_API__JWT_SECRET" in str(refused.value)
    assert "ENCORE_API__SERVICE_TOKEN" not in str(refused.value)


def test_a_short_jwt_secret_is_refused_outside_development() -> None:
    short = api_settings(development=False, service_token="svc-token", jwt_secret="k" * 31)
    with pytest.raises(ConfigurationError, match=r"ENCORE_API__JWT_SECRET.*it has 31"):
        check_secrets(short)


def test_a_short_stream_secret_is_refused_outside_development() -> None:
    short = api_settings(
        development=False, stream_secret="s" * 31, service_token="svc", jwt_secret="k" * 32
    )
    with pytest.raises(ConfigurationError, match=r"ENCORE_MEDIA__STREAM_SECRET.*it has 31"):
        check_secrets(short)


def test_explicit_secrets_or_development_are_accepted() -> None:
    check_secrets(api_settings(development=False, service_token="svc", jwt_secret="k" * 32))
    check_secrets(api_settings(development=True))
