"""BodyLimit: pure ASGI middleware refusing request bodies over max_body_bytes with 413."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import error_response
from service.errors import TooLarge


def body_too_large(max_bytes: int) -> TooLarge:
    """The one 413 for a body over the limit, from this middleware and the /predict fast lane."""
    return TooLarge(f"the request body exceeds the limit of {max_bytes} bytes")


class BodyLimit:
    """Refuse a body over ``max_bytes`` before reading it whole.

    A declared Content-Length over the limit is answered at once, unread; otherwise the bytes
    are counted as the app receives them and the stream is cut at the limit. Pure ASGI (no
    BaseHTTPMiddleware) because it sits on every request's hot path.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = body_too_large(max_bytes).message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif _declared_length(scope) > self.max_bytes:
            await error_response(413, self.message)(scope, receive, send)
        else:
            await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    raise TooLarge(self.message)
            return msg

        async def watching_send(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counting_receive, watching_send)
        except TooLarge as exc:
            # Raised by counting_receive where the app does not map it to 413 itself.
            if started:
                raise
            await error_response(413, exc.message)(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    """The Content-Length header's value; 0 when absent or not a number."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
