"""Domain errors. Each message names the thing, what was expected and what arrived.

Library code raises these; each app maps them to status codes in one handler and each CLI
command turns them into a one-line message and a non-zero exit.
"""


class EncoreError(Exception):
    """Base of every error Encore raises on purpose."""


class ConfigurationError(EncoreError):
    """A setting is missing or inconsistent (a jar folder not built, a bad URL...)."""


class ServiceError(EncoreError):
    """A local platform service failed to start, stop or answer its health check."""

    def __init__(self, service: str, message: str, log_file: str | None = None) -> None:
        self.service = service
        self.log_file = log_file
        where = f" (log: {log_file})" if log_file else ""
        super().__init__(f"{service}: {message}{where}")


class ContractError(EncoreError):
    """A record does not follow its contract (event schema, table schema)."""


class NotFoundError(EncoreError):
    """A named thing (table, model, user, song) does not exist."""


class DatasetError(EncoreError):
    """A dataset is missing or malformed."""


class AuthenticationError(EncoreError):
    """No credentials, or credentials that are invalid or expired (401)."""


class PermissionDeniedError(EncoreError):
    """Valid credentials that do not allow this action (403)."""
