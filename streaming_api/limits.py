"""The request body limit, on every route: ``settings.api.max_body_bytes``.

An ASGI middleware in front of the whole app. A declared ``Content-Length`` over the limit is
answered **413** before a byte of the body is read; a body without one (chunked) is counted
as it arrives and refused with **413** the moment it passes the limit, so no route ever
buffers more than the limit (a 300 MB chunked register request once grew the API by 500 MB).
Routes read bodies as usual; the count happens in ``receive``.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes the limit; the app's handler answers 413."""

    def __init__(self, limit: int, size: str | None = None) -> None:
        has = f"has {size} bytes" if size else f"has more than {limit} bytes"
        super().__init__(
            status_code=413,
            detail=f"the request body {has}; the limit is {limit} bytes (api.max_body_bytes)",
        )


class BodySizeLimit:
    """Refuse request bodies over ``max_body_bytes`` with 413, counting while reading."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            await _refuse(BodyTooLarge(limit, declared), scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge as error:
            # normally the app's handler answers; this covers a read outside a route
            if started:
                raise
            await _refuse(error, scope, receive, send)


async def _refuse(error: BodyTooLarge, scope: Scope, receive: Receive, send: Send) -> None:
    # close the connection: the rest of the body is not read
    response = JSONResponse(
        {"detail": error.detail}, status_code=413, headers={"Connection": "close"}
    )
    await response(scope, receive, send)
