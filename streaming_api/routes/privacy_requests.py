"""``/api/v1/me/privacy-requests``: a listener asks for their data to be erased or exported."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from encore.db import privacy_requests
from streaming_api.deps import DbDep, PrincipalDep, SettingsDep

router = APIRouter(prefix="/api/v1/me/privacy-requests", tags=["privacy"])


class PrivacyRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["erase", "export"] = Field(
        description="erase: your listening data is deleted from the platform's data lake; "
        "export: a copy of it is prepared."
    )


class PrivacyRequestOut(BaseModel):
    request_id: str
    kind: str
    status: str = Field(description="pending, done, or failed (retried until done).")
    requested_at: datetime
    due_at: datetime = Field(description="The request is done by then at the latest.")
    finished_at: datetime | None

    @classmethod
    def of(cls, request: privacy_requests.PrivacyRequest) -> PrivacyRequestOut:
        return cls(**{name: getattr(request, name) for name in cls.model_fields})


@router.post("", status_code=202, response_model=PrivacyRequestOut)
async def request_privacy(
    principal: PrincipalDep,
    settings: SettingsDep,
    db: DbDep,
    body: Annotated[PrivacyRequestIn, Body()],
) -> PrivacyRequestOut:
    """Ask for your data to be erased or exported: **202**, the request is queued and done by
    its `due_at`. Asking again while one of the same kind is open returns that one. Listener
    tokens only (**403** for the service token)."""
    user_id = principal.listener_id()
    queued, _ = await anyio.to_thread.run_sync(
        privacy_requests.queue_request, settings, db, body.kind, user_id
    )
    return PrivacyRequestOut.of(queued)


@router.get("", response_model=list[PrivacyRequestOut])
async def list_privacy_requests(principal: PrincipalDep, db: DbDep) -> list[PrivacyRequestOut]:
    """Your requests, newest first. Once an erasure is done, your id is removed from it and
    from your earlier requests, so they are no longer listed."""
    user_id = principal.listener_id()
    mine = await anyio.to_thread.run_sync(privacy_requests.requests_of, db, user_id)
    return [PrivacyRequestOut.of(r) for r in mine]
