"""Request dependencies, as typed aliases routes declare in their signatures."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from encore.settings import Settings
from streaming_api.accounts import AccountStore
from streaming_api.auth import Principal, authenticate
from streaming_api.producer import EventProducer
from streaming_api.ratelimit import AuthRateLimiter

# Only for the OpenAPI security scheme; `get_principal` reads the header itself so that a
# missing or malformed header gets our 401 message rather than FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="The service token or a listener JWT.")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_producer(request: Request) -> EventProducer:
    return request.app.state.producer


def get_accounts(request: Request) -> AccountStore:
    return request.app.state.accounts


def get_rate_limiter(request: Request) -> AuthRateLimiter:
    return request.app.state.rate_limiter


def get_db(request: Request) -> Engine:
    """The API's one PostgreSQL engine (a pool of ``api.db_pool_size`` connections)."""
    return request.app.state.db


SettingsDep = Annotated[Settings, Depends(get_settings)]
ProducerDep = Annotated[EventProducer, Depends(get_producer)]
AccountsDep = Annotated[AccountStore, Depends(get_accounts)]
RateLimiterDep = Annotated[AuthRateLimiter, Depends(get_rate_limiter)]
DbDep = Annotated[Engine, Depends(get_db)]


def get_principal(
    request: Request,
    settings: SettingsDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return authenticate(settings, request.headers.get("authorization"))


PrincipalDep = Annotated[Principal, Depends(get_principal)]
