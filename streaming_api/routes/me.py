"""``/api/v1/me``: the signed-in listener's own profile."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from encore.db.schema import SUBSCRIPTION_PLANS
from streaming_api.deps import AccountsDep, PrincipalDep
from streaming_api.routes.auth import Country, Email

router = APIRouter(prefix="/api/v1/me", tags=["accounts"])


class ProfileOut(BaseModel):
    user_id: str
    username: str
    email: str | None
    country: str | None = Field(description="ISO 3166-1 alpha-2; decides which songs stream.")
    subscription_plan: str = Field(
        description="Changed by billing, not here.",
        json_schema_extra={"enum": list(SUBSCRIPTION_PLANS)},
    )
    allow_explicit: bool = Field(
        description="false: explicit songs are not to be recommended (stored here; the "
        "recommendation service applies it)."
    )
    created_at: datetime


class ProfileChanges(BaseModel):
    """The fields to change; those left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    country: Country | None = None
    allow_explicit: bool | None = None


@router.get("", response_model=ProfileOut)
async def read_profile(principal: PrincipalDep, accounts: AccountsDep) -> ProfileOut:
    """Your profile. Listener tokens only (the service token has no profile: **403**)."""
    user_id = principal.listener_id()
    profile = await anyio.to_thread.run_sync(accounts.profile, user_id)
    return ProfileOut(**vars(profile))


@router.patch("", response_model=ProfileOut)
async def change_profile(
    principal: PrincipalDep, accounts: AccountsDep, changes: Annotated[ProfileChanges, Body()]
) -> ProfileOut:
    """Change your e-mail, country or explicit-content choice. An e-mail another account
    holds answers **409**; the subscription plan changes through billing, not here."""
    user_id = principal.listener_id()
    fields = changes.model_dump(exclude_unset=True)
    if fields.get("allow_explicit", True) is None:
        del fields["allow_explicit"]  # null means "unchanged" for a boolean
    profile = await anyio.to_thread.run_sync(accounts.update_profile, user_id, fields)
    return ProfileOut(**vars(profile))
