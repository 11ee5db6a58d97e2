"""Errors of the listener-facing API, on top of Encore's domain errors.

Library code in this package raises these; ``streaming_api.app`` maps every ``EncoreError``
to a status code in one handler (``STATUS_BY_ERROR``), so routes never build error responses.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from encore.errors import (  # noqa: F401 (re-exported: the API raises them)
    AuthenticationError,
    ContractError,
    EncoreError,
    PermissionDeniedError,
)


class ConflictError(EncoreError):
    """The thing to create exists already (409)."""


class PreconditionFailedError(EncoreError):
    """An ``If-Match`` version that is no longer current: someone changed it first (412)."""


class NotLicensedError(EncoreError):
    """The song is not licensed in the listener's country (451)."""


class PayloadTooLargeError(EncoreError):
    """A body or batch over the documented limit (413)."""


class PreconditionRequiredError(ContractError):
    """A change to a versioned resource without ``If-Match`` (428)."""


class RateLimitedError(EncoreError):
    """Too many attempts from one client address or at one username (429).

    ``retry_after`` is the seconds until the window admits an attempt again; ``items`` name
    the limit, in the shape of :class:`EventValidationError`'s.
    """

    def __init__(self, message: str, retry_after: int, items: list[dict]) -> None:
        self.retry_after = retry_after
        self.items = items
        super().__init__(message)


class UnavailableError(EncoreError):
    """A backing service (Kafka, PostgreSQL) did not answer in time (503)."""


class EventValidationError(ContractError):
    """Some events of a request break the v1 contract; ``items`` names each one.

    Each item is ``{"index": int | None, "field": str, "reason": str}``; ``index`` is the
    position in ``events`` (``None`` for a single event or a body that is not JSON).
    """

    def __init__(self, message: str, items: list[dict]) -> None:
        self.items = items
        super().__init__(message)


class ErrorItem(BaseModel):
    """One problem of a request: which item, which field, and why."""

    model_config = ConfigDict(extra="allow")

    index: int | None = Field(
        default=None, description="Position in `events` (null: the body or a single event)."
    )
    field: str = Field(description="Dotted field path, `(body)` or `(event)`.")
    reason: str
    type: str | None = Field(default=None, description="Machine-readable kind of problem.")


class ErrorBody(BaseModel):
    """The body of every error answer: `detail` says what went wrong; `errors`, when present,
    names each problem."""

    detail: str
    errors: list[ErrorItem] | None = None


_ERROR_DESCRIPTIONS = {
    401: "Missing, invalid or expired credentials (`WWW-Authenticate: Bearer`).",
    403: "The credentials do not allow this action (a listener posting another user's events).",
    404: "No such resource.",
    409: "The thing to create exists already.",
    412: "`If-Match` names a version that is no longer current: read again, then retry.",
    413: "The body is over `api.max_body_bytes`, or a batch over `api.max_batch_events`.",
    422: "The request is invalid: `errors` names each problem (index, field, reason).",
    428: "This change needs `If-Match` with the version you read (lost-update protection).",
    429: "Too many attempts from this address or at this username; retry after `Retry-After`.",
    451: "The song is not licensed in the listener's country (`detail` says which).",
    503: "A backing service (Kafka, PostgreSQL) did not answer; nothing was done, retry later.",
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in _ERROR_DESCRIPTIONS.items()
}
ERROR_RESPONSES[429]["headers"] = {
    "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses=`` entries of these error statuses, from ``ERROR_RESPONSES``."""
    return {status: ERROR_RESPONSES[status] for status in statuses}
