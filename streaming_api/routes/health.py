"""``GET /api/v1/health``: is the API up, and can it reach Kafka."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter
from pydantic import BaseModel

from streaming_api.deps import ProducerDep
from streaming_api.errors import UnavailableError

router = APIRouter(prefix="/api/v1/health", tags=["health"])


class Health(BaseModel):
    status: str
    kafka: str


@router.get("", response_model=Health)
async def health(producer: ProducerDep) -> Health:
    """`status` is `ok` when play events can be accepted, `degraded` when Kafka is
    unreachable (posts then answer 503). The API itself is up whenever this answers."""
    try:
        await anyio.to_thread.run_sync(producer.connect)
    except UnavailableError:
        return Health(status="degraded", kafka="unreachable")
    return Health(status="ok", kafka="connected")
