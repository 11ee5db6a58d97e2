"""``/api/v1/auth``: minimal listener accounts and token issue."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Body, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from encore.countries import ASSIGNED_COUNTRY_CODES
from encore.errors import ContractError
from streaming_api.accounts import EMAIL_PATTERN, PASSWORD_PATTERN, USERNAME_PATTERN
from streaming_api.auth import issue_token
from streaming_api.deps import AccountsDep, RateLimiterDep, SettingsDep
from streaming_api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Credentials(BaseModel):
    username: str = Field(
        min_length=3, max_length=64, pattern=f"^{USERNAME_PATTERN}$", examples=["ada"]
    )
    password: str = Field(
        min_length=8,
        max_length=256,
        pattern=f"^{PASSWORD_PATTERN}$",
        examples=["correct horse battery"],
    )


Country = Annotated[
    str,
    Field(
        pattern="^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2 code: which songs are licensed to you depends on it.",
        json_schema_extra={"enum": sorted(ASSIGNED_COUNTRY_CODES)},
        examples=["GB"],
    ),
]
Email = Annotated[
    str, Field(max_length=254, pattern=f"^{EMAIL_PATTERN}$", examples=["ada@example.org"])
]


class Registration(Credentials):
    email: Email | None = None
    country: Country | None = None


class AccountOut(BaseModel):
    user_id: str = Field(description="The id your play events carry as `user_id`.")
    username: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    user_id: str


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountOut,
    responses={409: {**ERROR_RESPONSES[409], "description": "The username is taken."}},
)
async def register(
    request: Request,
    credentials: Annotated[Registration, Body()],
    accounts: AccountsDep,
    limiter: RateLimiterDep,
) -> AccountOut:
    """Create a listener account.

    The answer holds your `user_id`: the value every play event you post must carry. Then
    get a token from `POST /api/v1/auth/token`. `email` and `country` are optional here and
    can be set later with `PATCH /api/v1/me`; without one, only songs licensed in every
    market stream (the others answer 451). A taken username or e-mail answers **409**. Attempts
    are limited per client address and per username (`api.register_rate_per_ip`,
    `api.register_rate_per_user`): over a limit answers **429** with `Retry-After`.
    """
    await limiter.check(limiter.register, request, credentials.username)
    # scrypt costs tens of milliseconds of CPU: not on the event loop
    account = await anyio.to_thread.run_sync(
        accounts.register,
        credentials.username,
        credentials.password,
        credentials.email,
        credentials.country,
    )
    return AccountOut(user_id=account.user_id, username=account.username)


@router.post(
    "/token",
    response_model=TokenOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["username", "password"],
                        "properties": {
                            **Credentials.model_json_schema()["properties"],
                            "grant_type": {"type": "string", "enum": ["password"]},
                        },
                    }
                },
                "application/json": {"schema": Credentials.model_json_schema()},
            },
        }
    },
    responses={401: {**ERROR_RESPONSES[401], "description": "Unknown username or wrong password."}},
)
async def token(
    request: Request, accounts: AccountsDep, settings: SettingsDep, limiter: RateLimiterDep
) -> TokenOut:
    """Exchange a username and password for a listener token (a JWT).

    Send an OAuth2 password form (`username`, `password`) or the same fields as JSON. Use
    the token as `Authorization: Bearer <access_token>`; it expires after `expires_in`
    seconds. Attempts, right or wrong, are limited per client address and per username
    (`api.login_rate_per_ip`, `api.login_rate_per_user`, moving windows): over a limit
    answers **429** with `Retry-After`.
    """
    if request.headers.get("content-type", "").startswith("application/json"):
        raw = await request.body()
        try:
            credentials = Credentials.model_validate_json(raw)
        except ValidationError as error:
            # as FastAPI's own 422 (without `input`: str(error) would quote the password)
            errors = error.errors(include_input=False, include_url=False)
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in errors]
            ) from None
    else:
        form = await request.form()
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise ContractError("expected form fields 'username' and 'password'")
        if form.get("grant_type") not in (None, "password"):
            raise ContractError("grant_type must be 'password' (the OAuth2 password flow)")
        credentials = Credentials.model_construct(username=username, password=password)
    await limiter.check(limiter.login, request, credentials.username)
    # scrypt costs tens of milliseconds of CPU: not on the event loop
    account = await anyio.to_thread.run_sync(
        accounts.authenticate, credentials.username, credentials.password
    )
    return TokenOut(
        access_token=issue_token(settings, account.user_id),
        expires_in=settings.api.jwt_ttl_seconds,
        user_id=account.user_id,
    )
