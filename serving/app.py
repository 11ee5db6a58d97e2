"""The recommendation service: ``create_app()`` builds it, ``encore serve`` runs it.

Routes are thin: they check who is calling, then ask :class:`serving.recommend.Recommender`.
At start-up the service loads the champion candidate model (and every other alias of the
A/B split), the ranker, the dimensions and the feature store; a watcher thread checks them
every ``serving.registry_poll_s`` and swaps in new versions whole. None of them being there
stops it from starting: it answers with what it has and says what is missing
(``degraded``), so a listener never gets a 5xx because a dependency did.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from encore.countries import ASSIGNED_COUNTRY_CODES
from encore.errors import (
    AuthenticationError,
    ContractError,
    EncoreError,
    NotFoundError,
    PermissionDeniedError,
)
from encore.settings import Settings, get_settings
from encore.tokens import Principal, authenticate
from serving.recommend import Answer, Recommender

log = logging.getLogger(__name__)

STATUS_BY_ERROR: list[tuple[type[EncoreError], int]] = [
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ContractError, 422),
    (EncoreError, 500),
]
ID_PATTERN = r"^[A-Za-z0-9_\-:.]{1,128}$"
_bearer = HTTPBearer(auto_error=False, description="A listener JWT, or the service token.")


class ModelRef(BaseModel):
    name: str
    version: str


class Song(BaseModel):
    song_id: str
    artist_id: str
    genre: str
    score: float
    sources: list[str] = Field(
        description="what proposed the song: model, session, artists, trending, content, popular"
    )


class Recommendations(BaseModel):
    user_id: str | None
    variant: str | None = Field(
        description="the A/B arm that answered; send it back in play events' `variant`"
    )
    model: ModelRef | None = Field(description="the candidate model version; null: popularity")
    ranker: str | None = Field(description="the ranker version that ordered the list, if any")
    degraded: list[str] = Field(
        description="what was missing: realtime (Redis), model (registry), features (Feast)"
    )
    cold_start: bool
    items: list[Song]


def _response(answer: Answer, user_id: str | None) -> Recommendations:
    return Recommendations(
        user_id=user_id,
        variant=answer.variant,
        model=ModelRef(name=answer.model[0], version=answer.model[1]) if answer.model else None,
        ranker=answer.ranker,
        degraded=answer.degraded,
        cold_start=answer.cold_start,
        items=[
            Song(
                song_id=i.song_id,
                artist_id=i.artist_id,
                genre=i.genre,
                score=i.score,
                sources=list(i.sources),
            )
            for i in answer.items
        ],
    )


# -- dependencies ---------------------------------------------------------------------------


# The routes and their dependencies are ``async def`` on purpose: a request is a few
# milliseconds of CPU-bound Python, and FastAPI's thread pool would hand each one between
# threads fighting for the GIL (its 5 ms switch interval showed as ~10 ms per request under
# load). Inline on the event loop, one worker process answers one request after another.


async def _recommender(request: Request) -> Recommender:
    return request.app.state.recommender


async def _principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return authenticate(request.app.state.settings, request.headers.get("authorization"))


RecommenderDep = Annotated[Recommender, Depends(_recommender)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
Limit = Annotated[int, Query(ge=1, le=100, description="how many songs")]


def _listener_for(principal: Principal, user_id: str | None) -> str:
    """Whose list: a listener's own (naming another is refused); the service names one."""
    if principal.is_service:
        if not user_id:
            raise ContractError("the service token must name the listener: ?user_id=")
        return user_id
    if user_id and user_id != principal.user_id:
        raise PermissionDeniedError(
            f"listener {principal.user_id!r} may read only their own recommendations"
        )
    return principal.listener_id()


# -- the watcher ----------------------------------------------------------------------------


class Watcher:
    """Refreshes every holder now and then every ``registry_poll_s`` in one daemon thread."""

    def __init__(self, settings: Settings, holders: list) -> None:
        self.holders = holders
        self.interval_s = settings.serving.registry_poll_s
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def refresh_all(self) -> None:
        for holder in self.holders:
            try:
                holder.refresh()
            except Exception:  # one holder failing must not stop the others
                log.exception("refreshing %s failed", type(holder).__name__)

    def start(self) -> None:
        def loop() -> None:
            while not self.stop.wait(self.interval_s):
                self.refresh_all()

        self.thread = threading.Thread(target=loop, name="serving-watch", daemon=True)
        self.thread.start()


class FeatureStoreHolder:
    """Opens the feature store when it can (a repo applied); None until then."""

    def __init__(self, settings: Settings, features) -> None:
        self.settings = settings
        self.features = features

    def refresh(self) -> bool:
        if self.features.store is not None:
            return False
        from features.store import feature_store

        try:
            self.features.store = feature_store(self.settings)
        except Exception as error:
            log.info("feature store not available yet: %s", error)
            return False
        return True


def build_recommender(settings: Settings) -> tuple[Recommender, Watcher]:
    from serving.bundle import ModelHolder
    from serving.catalog import CatalogHolder
    from serving.ranker import RankerHolder
    from serving.signals import OnlineFeatures, RealtimeSignals

    aliases = dict.fromkeys([settings.serving.model_alias, *settings.serving.ab_split])
    models = {alias: ModelHolder(settings, alias=alias) for alias in aliases}
    catalog = CatalogHolder(settings)
    features = OnlineFeatures(settings, None)
    ranker = RankerHolder(settings, catalog, features)
    recommender = Recommender(
        settings, models, catalog, RealtimeSignals(settings), features, ranker
    )
    holders = [catalog, *models.values(), FeatureStoreHolder(settings, features), ranker]
    return recommender, Watcher(settings, holders)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if getattr(app.state, "recommender", None) is None:
        recommender, watcher = build_recommender(settings)
        await anyio.to_thread.run_sync(watcher.refresh_all)
        watcher.start()
        app.state.recommender, app.state.watcher = recommender, watcher
    try:
        yield
    finally:
        watcher = getattr(app.state, "watcher", None)
        if watcher is not None:
            watcher.stop.set()
        if app.state.recommender.features is not None:
            app.state.recommender.features.close()


async def handle_encore_error(request: Request, error: EncoreError) -> JSONResponse:
    status = next(code for cls, code in STATUS_BY_ERROR if isinstance(error, cls))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.url.path, status, error)
    return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)


def create_app(settings: Settings | None = None, recommender: Recommender | None = None) -> FastAPI:
    """The service; ``recommender`` given (tests) replaces the one built at start-up."""
    settings = settings or get_settings()
    from encore.tokens import check_token_secrets
    from serving.bundle import quiet_artifact_downloads

    check_token_secrets(settings)
    quiet_artifact_downloads()
    app = FastAPI(
        title="Encore recommendations",
        version="1",
        description="For-you, similar songs and trending, two-stage, following the registry.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.recommender = recommender
    app.add_exception_handler(EncoreError, handle_encore_error)

    @app.get("/api/v1/health/live", tags=["health"])
    def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/health/ready", tags=["health"])
    async def ready(recommender: RecommenderDep) -> dict:
        models = {
            alias: (holder.current.version if holder.current else None)
            for alias, holder in recommender.models.items()
        }
        ranker = recommender.ranker.current if recommender.ranker else None
        return {
            "models": models,
            "ranker": ranker.version if ranker else None,
            "songs": len(recommender.catalog.current.songs),
            "listeners": len(recommender.catalog.current.listeners),
        }

    @app.get(
        "/api/v1/recommendations/for-you",
        response_model=Recommendations,
        tags=["recommendations"],
    )
    async def for_you(
        principal: PrincipalDep,
        recommender: RecommenderDep,
        limit: Limit = 20,
        genre: Annotated[str | None, Query(max_length=64)] = None,
        user_id: Annotated[
            str | None,
            Query(pattern=ID_PATTERN, description="service token only: whose list"),
        ] = None,
    ) -> Recommendations:
        listener = _listener_for(principal, user_id)
        if genre is not None and genre not in recommender.catalog.current.by_genre:
            known = sorted(recommender.catalog.current.by_genre)
            raise ContractError(f"unknown genre {genre!r}; the catalog has {known}")
        return _response(recommender.for_you(listener, limit, genre), listener)

    @app.get(
        "/api/v1/songs/{song_id}/similar",
        response_model=Recommendations,
        tags=["recommendations"],
    )
    async def similar(
        principal: PrincipalDep,
        recommender: RecommenderDep,
        song_id: Annotated[str, Path(pattern=ID_PATTERN)],
        limit: Limit = 20,
    ) -> Recommendations:
        if song_id not in recommender.catalog.current.songs:
            raise NotFoundError(f"song {song_id!r} is not in the catalog")
        listener = None if principal.is_service else principal.listener_id()
        return _response(recommender.similar(song_id, limit, listener), listener)

    @app.get(
        "/api/v1/recommendations/trending",
        response_model=Recommendations,
        tags=["recommendations"],
    )
    async def trending(
        principal: PrincipalDep,
        recommender: RecommenderDep,
        country: Annotated[str | None, Query(description="ISO 3166-1 alpha-2")] = None,
        limit: Limit = 20,
    ) -> Recommendations:
        listener = None if principal.is_service else principal.listener_id()
        if country is None:
            country = recommender.catalog.current.listener(listener).country if listener else None
            if country is None:
                raise ContractError("name a country: ?country=US (no country is on file)")
        if not re.fullmatch(r"[A-Z]{2}", country) or country not in ASSIGNED_COUNTRY_CODES:
            raise ContractError(f"country must be an ISO 3166-1 alpha-2 code, got {country!r}")
        return _response(recommender.trending(country, limit, listener), listener)

    return app
