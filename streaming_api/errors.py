"""Errors of the listener-facing API, on top of Encore's domain errors.

Library code in this package raises these; ``streaming_api.app`` maps every ``EncoreError``
to a status code in one handler (``STATUS_BY_ERROR``), so routes never build error responses.
"""

from __future__ import annotations

from encore.errors import ContractError, EncoreError


class AuthenticationError(EncoreError):
    """No credentials, or credentials that are invalid or expired (401)."""


class PermissionDeniedError(EncoreError):
    """Valid credentials that do not allow this action (403)."""


class ConflictError(EncoreError):
    """The thing to create exists already (409)."""


class PayloadTooLargeError(EncoreError):
    """A body or batch over the documented limit (413)."""


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
