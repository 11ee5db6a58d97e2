"""Health of the API: liveness (the process answers) and readiness (its dependencies do).

``/api/v1/health/live`` calls nothing; ``/api/v1/health/ready`` makes a real round trip to
Kafka (a metadata request) and to PostgreSQL (the schema's revision), both at once, each within
``settings.api.readiness_timeout_ms``. The older ``/api/v1/health`` keeps its shape and its
200, but its Kafka field now comes from the same round trip.
"""

from __future__ import annotations

import math

import anyio
import anyio.to_thread
import psycopg
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from encore.db import migrate
from encore.settings import Settings
from streaming_api.deps import ProducerDep, SettingsDep
from streaming_api.errors import UnavailableError
from streaming_api.producer import EventProducer

router = APIRouter(prefix="/api/v1/health", tags=["health"])


class Liveness(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str
    """`ok`, or `unavailable` naming the dependencies that are down in `detail`."""
    checks: dict[str, str]
    """Per dependency (`kafka`, `postgres`): `ok`, or why it is not."""
    detail: str = ""


_NOT_READY = {
    503: {
        "description": "A dependency is down; `checks` names it. Play events answer 503 too.",
        "model": Readiness,
    }
}


def check_postgres(settings: Settings, timeout_s: float) -> None:
    """The schema's revision from the API's database, on a fresh connection (not a pooled
    one): it answers, and its schema is the one this code needs."""
    try:
        # libpq's connect_timeout is whole seconds (at least 2); the caller bounds the total
        with psycopg.connect(
            settings.postgres.effective_dsn, connect_timeout=max(2, math.ceil(timeout_s))
        ) as connection:
            connection.execute(f"SET statement_timeout = {max(1, int(timeout_s * 1000))}")
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except psycopg.errors.UndefinedTable as error:
        raise UnavailableError("the database has no schema: run `encore db upgrade`") from error
    except psycopg.Error as error:
        # the message may carry the DSN's host and user: name the failure's kind only
        raise UnavailableError(f"PostgreSQL did not answer ({type(error).__name__})") from error
    head = migrate.head_revision()
    if row is None or row[0] != head:
        current = row[0] if row else "(none)"
        raise UnavailableError(
            f"the schema is at {current}, this code needs {head}: run `encore db upgrade`"
        )


async def _check(name: str, check, timeout_s: float, checks: dict[str, str]) -> None:
    try:
        with anyio.fail_after(timeout_s + 0.5):
            # a check stuck in a library call is abandoned, not waited for
            await anyio.to_thread.run_sync(check, timeout_s, abandon_on_cancel=True)
        checks[name] = "ok"
    except UnavailableError as error:
        checks[name] = str(error)
    except TimeoutError:
        checks[name] = f"did not answer within {timeout_s:g} s"


async def readiness(settings: Settings, producer: EventProducer) -> JSONResponse:
    timeout_s = settings.api.readiness_timeout_ms / 1000
    checks: dict[str, str] = {}
    async with anyio.create_task_group() as group:
        group.start_soon(_check, "kafka", producer.check, timeout_s, checks)
        group.start_soon(
            _check, "postgres", lambda t: check_postgres(settings, t), timeout_s, checks
        )
    checks = dict(sorted(checks.items()))
    down = [name for name, state in checks.items() if state != "ok"]
    if not down:
        return JSONResponse(Readiness(status="ok", checks=checks).model_dump())
    body = Readiness(
        status="unavailable", checks=checks, detail=f"not ready: {', '.join(down)} down"
    )
    return JSONResponse(body.model_dump(), status_code=503)


@router.get("/live", response_model=Liveness)
async def live() -> Liveness:
    """Liveness: the API process answers. Calls no dependency; restart the process only if
    this fails."""
    return Liveness()


@router.get("/ready", response_model=Readiness, responses=_NOT_READY)
async def ready(settings: SettingsDep, producer: ProducerDep) -> JSONResponse:
    """Readiness: **200** when Kafka answers a metadata request and PostgreSQL reports the
    schema revision this code needs, each within `readiness_timeout_ms` (2 s by default);
    **503** otherwise, with `checks` naming each dependency that is down (or its schema
    behind). Route traffic away while this is 503."""
    return await readiness(settings, producer)


class KafkaHealth(BaseModel):
    status: str
    kafka: str


@router.get("", response_model=KafkaHealth, deprecated=True)
async def health(settings: SettingsDep, producer: ProducerDep) -> KafkaHealth:
    """Kept for existing clients; use `/api/v1/health/ready` (Kafka and PostgreSQL, 503 when
    either is down) and `/api/v1/health/live`. Always **200**: `status` is `ok` when a Kafka
    broker answered a metadata request within `readiness_timeout_ms`, `degraded` when none
    did (play events then answer 503)."""
    checks: dict[str, str] = {}
    await _check("kafka", producer.check, settings.api.readiness_timeout_ms / 1000, checks)
    if checks["kafka"] == "ok":
        return KafkaHealth(status="ok", kafka="connected")
    return KafkaHealth(status="degraded", kafka="unreachable")
