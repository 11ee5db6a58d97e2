"""The listener-facing API: ``create_app()`` builds it, ``encore api`` serves it.

This issue brings the playback-event path (``POST /api/v1/playback-events``), minimal
accounts and token issue, and a health check. The Kafka producer and the database engine are
created in ``lifespan``, never at import. Every ``EncoreError`` becomes a status code in one
handler (``STATUS_BY_ERROR``); error bodies are ``{"detail": str, "errors": [...]}``.
``create_app`` refuses the built-in default secrets unless ``settings.development`` is on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from encore.db import create_engine, migrate
from encore.errors import ContractError, EncoreError, NotFoundError
from encore.settings import Settings, get_settings
from streaming_api.accounts import AccountStore
from streaming_api.auth import check_secrets
from streaming_api.errors import (
    AuthenticationError,
    ConflictError,
    EventValidationError,
    NotLicensedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
    RateLimitedError,
    UnavailableError,
    error_responses,
)
from streaming_api.limits import BodySizeLimit
from streaming_api.playback import request_body_schema
from streaming_api.producer import EventProducer
from streaming_api.ratelimit import AuthRateLimiter
from streaming_api.routes import (
    auth,
    catalog,
    health,
    me,
    playback_events,
    playlists,
    privacy_requests,
    search,
    streaming,
)

log = logging.getLogger(__name__)

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: list[tuple[type[EncoreError], int]] = [
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PreconditionFailedError, 412),
    (PayloadTooLargeError, 413),
    (PreconditionRequiredError, 428),
    (ContractError, 422),
    (RateLimitedError, 429),
    (NotLicensedError, 451),
    (UnavailableError, 503),
    (EncoreError, 500),
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.producer = EventProducer(settings)
    app.state.db = create_engine(settings, pool_size=settings.api.db_pool_size, pre_ping=False)
    app.state.accounts = AccountStore(app.state.db)
    app.state.rate_limiter = AuthRateLimiter(settings)
    # Neither Kafka nor PostgreSQL being down keeps the API from starting: requests that need
    # them answer 503 and retry the connection. An old schema does: it would answer 500s.
    try:
        await anyio.to_thread.run_sync(app.state.producer.connect)
    except UnavailableError as error:
        log.warning("Kafka not ready at startup: %s", error)
    try:
        await anyio.to_thread.run_sync(migrate.check_current, app.state.db)
    except OperationalError as error:
        log.warning("PostgreSQL not ready at startup: %s", error.orig)
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(app.state.producer.close)
        app.state.db.dispose()
        await app.state.rate_limiter.close()


async def handle_encore_error(request: Request, error: EncoreError) -> JSONResponse:
    status = next(code for cls, code in STATUS_BY_ERROR if isinstance(error, cls))
    body: dict = {"detail": str(error)}
    if isinstance(error, EventValidationError | RateLimitedError):
        body["errors"] = error.items
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(error, RateLimitedError):
        headers = {"Retry-After": str(error.retry_after)}
    if status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.url.path, status, error)
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_request_validation(
    request: Request, error: RequestValidationError
) -> JSONResponse:
    # Same shape as our own 422s, for the routes whose bodies FastAPI validates.
    items = [
        {
            "index": None,
            "field": ".".join(str(part) for part in detail["loc"][1:]) or "(body)",
            "reason": detail["msg"],
            "type": detail["type"],
        }
        for detail in error.errors()
    ]
    return JSONResponse({"detail": "the request is invalid", "errors": items}, status_code=422)


async def handle_http_exception(request: Request, error: HTTPException) -> JSONResponse:
    # Starlette's own answers (404, 405, the body limit's 413) in our error shape.
    if error.status_code == 400:
        # FastAPI's "error parsing the body" (e.g. not UTF-8): invalid JSON like any other
        item = {"index": None, "field": "(body)", "reason": str(error.detail)}
        body = {"detail": "the request body is not valid JSON", "errors": [item]}
        return JSONResponse(body, status_code=422)
    headers = error.headers
    if error.status_code == 405:
        # Starlette names only the first route's methods; a path served by several routes
        # (GET and PATCH /api/v1/me) allows all of theirs
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return JSONResponse(
        {"detail": str(error.detail)}, status_code=error.status_code, headers=headers
    )


def _allowed_methods(request: Request) -> list[str]:
    # asked method by method through the public `matches` (included routers nest routes)
    return [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API, configured by ``settings`` (default: the process settings).

    Raises:
        ConfigurationError: a built-in default secret outside development (``check_secrets``).
    """
    settings = settings or get_settings()
    check_secrets(settings)
    app = FastAPI(
        title="Encore streaming API",
        version="1.0.0",
        summary="Listener-facing API of the Encore music platform.",
        description=(
            "Play events from listeners' apps into the platform. Authenticate with "
            "`Authorization: Bearer <token>`: a listener token from `/api/v1/auth/token`, "
            "or the service token of trusted clients."
        ),
        lifespan=lifespan,
    )
    # every route: a larger Content-Length is refused up front, a chunked body while read
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.api.max_body_bytes)
    app.state.settings = settings
    app.include_router(playback_events.router, responses=error_responses(401, 403, 413, 422, 503))
    app.include_router(auth.router, responses=error_responses(413, 422, 429, 503))
    app.include_router(health.router)
    app.include_router(me.router, responses=error_responses(401, 403, 404, 409, 413, 422, 503))
    app.include_router(search.router, responses=error_responses(401, 422, 503))
    app.include_router(catalog.router, responses=error_responses(401, 404, 422, 503))
    app.include_router(playlists.router, responses=error_responses(401, 404, 413, 422, 503))
    app.include_router(streaming.router, responses=error_responses(401, 404, 422, 503))
    app.include_router(privacy_requests.router, responses=error_responses(401, 403, 422, 503))
    app.add_exception_handler(EncoreError, handle_encore_error)
    app.add_exception_handler(RequestValidationError, handle_request_validation)
    app.add_exception_handler(HTTPException, handle_http_exception)
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, settings: Settings) -> dict:
    """FastAPI's schema plus the playback-event body, which the route reads raw for speed."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    body = request_body_schema(settings.api.max_batch_events)
    schema.setdefault("components", {}).setdefault("schemas", {}).update(body["components"])
    schema["paths"]["/api/v1/playback-events"]["post"]["requestBody"] = {
        "required": True,
        "description": (
            'One play event, or `{"events": [...]}` with at most '
            f"{settings.api.max_batch_events} events."
        ),
        "content": {"application/json": {"schema": body["schema"]}},
    }
    app.openapi_schema = schema
    return schema
