"""The MLflow tracking server as this process sees it: reachable or not, requests bounded.

MLflow's HTTP client retries a refused connection seven times with exponential back-off
(about 4.5 minutes) and then raises a long chained traceback. Encore asks the server first
(one ``/health`` request, a few seconds at most) and bounds MLflow's own retries, so a
server that is down, or dies mid-run, is one :class:`~encore.errors.ServiceError` naming the
tracking URI within seconds. Importing this module does not import MLflow.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from encore.errors import EncoreError, ServiceError

PROBE_TIMEOUT_S = 3.0

# MLflow reads these at each request. Three quick retries (0, 2, 4 s apart) ride out a
# server restart or a busy moment, yet a server that is gone fails within seconds; a 30 s
# read timeout still lets a model's artifacts upload on a slow disk.
HTTP_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def bound_requests() -> None:
    """Bound MLflow's HTTP retries and timeout for this process (a value set outside wins)."""
    for key, value in HTTP_ENV.items():
        os.environ.setdefault(key, value)


def unreachable(tracking_uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> ServiceError | None:
    """Why the tracking server at ``tracking_uri`` cannot be reached, or None if it answers.

    Any HTTP answer counts as reachable (a server behind a proxy may refuse ``/health``);
    only ``http(s)`` URIs are probed (a ``file:`` or ``sqlite:`` store has no server).
    """
    import httpx

    if not tracking_uri.startswith(("http://", "https://")):
        return None
    try:
        httpx.get(f"{tracking_uri.rstrip('/')}/health", timeout=timeout_s)
    except httpx.TimeoutException:
        reason = f"no answer within {timeout_s:g} s"
    except httpx.TransportError as error:
        reason = _short(error)
    else:
        return None
    return ServiceError(
        "mlflow",
        f"tracking server {tracking_uri} is unreachable ({reason}); start it with "
        "`encore up mlflow`, or set ENCORE_MLFLOW__TRACKING_URI to a running server",
    )


def require(tracking_uri: str) -> None:
    """Raise :class:`ServiceError` at once if the tracking server cannot be reached."""
    problem = unreachable(tracking_uri)
    if problem is not None:
        raise problem


@contextlib.contextmanager
def server_errors(tracking_uri: str) -> Iterator[None]:
    """MLflow calls in the block: a failure while the server is gone is a ServiceError.

    Other failures (a bad parameter, a server that answers with an error) pass unchanged.
    """
    bound_requests()
    try:
        yield
    except EncoreError:
        raise
    except Exception as error:
        problem = unreachable(tracking_uri)
        if problem is None:
            raise
        raise problem from error


def _short(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text.splitlines()[0][:120]
