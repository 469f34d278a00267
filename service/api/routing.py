"""AsgiRoute: a hot endpoint served in raw ASGI, yet one documented route of the routing table.

Measured on /predict: FastAPI's per-request work (dependency solving, query validation,
Request and Response objects) cost several times the model's 15-50 us on a one-image request.
Starlette routes accept a raw ASGI endpoint ("Endpoint is a class. Treat it as ASGI"); this
route keeps FastAPI's OpenAPI operation, built from a documentation signature as for any
route, and hands each request to the ASGI handler: routing, ``--root-path``, 404/405 and the
middleware stay the framework's, and there is no second path to drift from it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi.routing import APIRoute
from starlette.types import Message, Receive, Scope, Send

from service.api.errors import describe
from service.api.responses import ORJSON_OPTIONS
from service.codecs import Body
from service.errors import ServiceError, TooLarge
from service.offload import ByteBudget
from service.runtime import Runtime

Handler = Callable[["Exchange"], Awaitable[Any]]
_JSON = [(b"content-type", b"application/json")]
_JSON_MEDIA = "application/json"
_HELD = ByteBudget.KEY
#: Bodies up to this size are not counted in max_inflight_bytes: max_connections of them hold
#: at most 128 MiB at the defaults, and the common small request skips the bookkeeping.
UNBUDGETED_BYTES = 64 * 1024


@dataclass(frozen=True)
class Reply:
    """An answer already rendered: the body (bytes, or its parts in order), its media type and
    extra headers. Parts are sent as they are, in pieces of at most a MiB, never joined."""

    body: bytes | Sequence[bytes | memoryview]
    media: str
    headers: Mapping[str, str] = field(default_factory=dict)


class AsgiRoute(APIRoute):
    """An APIRoute documented from ``endpoint`` and served by ``handler(exchange) -> answer``.

    A Reply is sent as it is, any other answer rendered as JSON, with status 200; a
    ServiceError becomes the status and ``{"detail": ...}`` of the one error table
    (service/api/errors.py).
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        handler: Handler,
        runtime: Runtime,
        **kwargs: Any,
    ) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.handler = handler
        # Bound once per app: no app.state lookups (a Python __getattr__ each) per request.
        self.runtime = runtime
        self.max_body_bytes = runtime.settings.max_body_bytes
        self.app = self._serve

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Straight to the handler for an allowed method; anything else (405) the framework's
        way. (FastAPI's handle first looks for an included router's context: these routes are
        placed in the app's own table by create_app, never included, so there is none.)"""
        if self.methods and scope["method"] in self.methods:
            await self._serve(scope, receive, send)
        else:
            await super().handle(scope, receive, send)

    def error_answer(
        self, exc: ServiceError, scope: Scope
    ) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        """Status, JSON document and headers of a domain error (the v2 routes answer theirs)."""
        status, detail, extra = describe(exc, self.runtime.settings.overload_status)
        return (
            status,
            {"detail": detail, "request_id": scope.get("state", {}).get("request_id")},
            extra,
        )

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        try:
            answer = await self.handler(Exchange(scope, receive, runtime, self.max_body_bytes))
            status, headers = 200, _JSON
        except ServiceError as exc:
            status, answer, extra = self.error_answer(exc, scope)
            headers = _JSON + _encode(extra)
        except ClientGone:
            return
        finally:
            if _HELD in scope:
                runtime.inflight.release(scope)
        if isinstance(answer, Reply):
            payload = answer.body
            headers = [(b"content-type", answer.media.encode()), *_encode(answer.headers)]
        else:
            payload = orjson.dumps(answer, option=ORJSON_OPTIONS)
        if not isinstance(payload, bytes):
            await _send_parts(send, status, headers, payload)
            return
        length = (b"content-length", b"%d" % len(payload))
        await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
        await send({"type": "http.response.body", "body": payload})


#: The largest piece of a streamed answer: the server's write buffer holds about this much.
_PIECE = 1024 * 1024


async def _send_parts(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], parts: Sequence[bytes | memoryview]
) -> None:
    """An answer in parts, each sent in pieces of at most _PIECE bytes: the server's flow control
    then keeps one piece in its buffer at a time, where a whole answer would be copied there."""
    views = [memoryview(part).cast("B") for part in parts]
    length = (b"content-length", b"%d" % sum(view.nbytes for view in views))
    await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
    for view in views:
        for start in range(0, view.nbytes, _PIECE):
            piece = bytes(view[start : start + _PIECE])
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


#: Content-Type values as clients send them most often, and the media type each one names.
_MEDIA = {
    value.encode(): value
    for value in ("application/json", "application/x-npy", "application/x-npz")
}


def _media_type(value: bytes) -> str:
    """The media type of a Content-Type value: lower case, parameters dropped."""
    return value.decode("latin-1").split(";", 1)[0].strip().lower()


def _encode(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class ClientGone(Exception):
    """The client disconnected before its body arrived: there is no one to answer."""


class Exchange:
    """One request as a handler sees it: media type, query options, the body within a limit."""

    __slots__ = ("length", "max_body_bytes", "media", "receive", "runtime", "scope")

    def __init__(
        self, scope: Scope, receive: Receive, runtime: Runtime, max_body_bytes: int
    ) -> None:
        self.scope, self.receive, self.runtime = scope, receive, runtime
        self.max_body_bytes = max_body_bytes
        self.media, self.length = "", None
        for key, value in scope["headers"]:
            if key == b"content-type":
                self.media = _MEDIA.get(value) or _media_type(value)
            elif key == b"content-length" and value.isdigit():
                self.length = int(value)

    def query(self, names: frozenset[str] | None = None) -> dict[str, str]:
        """Query parameters (the last of repeated ones), only ``names`` when given."""
        if not self.scope["query_string"]:
            return {}
        return {k: v for k, v in self.query_items() if names is None or k in names}

    def query_items(self) -> list[tuple[str, str]]:
        """Every query parameter in order, blank values kept (``?top_k=`` is an error, not 3)."""
        raw = self.scope["query_string"]
        return parse_qsl(raw.decode("latin-1"), keep_blank_values=True) if raw else []

    async def body(self) -> Body:
        """The whole body, refused with TooLarge as soon as it passes the limit of its media
        type (max_json_bytes for JSON, else max_body_bytes): at once for a declared
        Content-Length over it, else once the chunks received add up past it. Its bytes are
        held in the worker's max_inflight_bytes budget until the request ends.

        A body in one piece comes as it is; one in many is copied piece by piece into a
        bytearray of its declared length (a join at the end would copy it all at once, holding
        the event loop for ~0.5 ms per MiB).
        """
        limit = self._admit()
        chunks: list[bytes] = []
        filled = bytearray()
        received = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            self._count(received, len(chunk), limit)
            more = message.get("more_body", False)
            if not more and received == len(chunk):
                return chunk  # the whole body in one piece: the common case
            if self.length is None:
                chunks.append(chunk)
            else:
                if not filled:
                    filled = bytearray(self.length)
                filled[received - len(chunk) : received] = chunk
            if not more:
                break
        if self.length is None:
            return b"".join(chunks)
        del filled[received:]  # a client that sent less than it declared
        return filled

    def bounded_receive(self) -> Receive:
        """``receive`` that raises TooLarge once the body passes its limit, and holds its bytes
        in the in-flight budget (Overloaded when that is spent), for readers that pull the body
        themselves (the multipart parser).

        Every route that reads a body reads it through this or ``body`` (they are all
        AsgiRoutes), so the limits need no middleware in front of every request.
        """
        limit = self._admit()
        received = 0
        receive = self.receive

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            size = len(message.get("body", b""))
            received += size
            self._count(received, size, limit)
            return message

        return bounded

    def _admit(self) -> int:
        """The body limit of this request's media type, once a declared Content-Length is
        within it and held in the in-flight budget."""
        settings = self.runtime.settings
        limit = min(settings.max_json_bytes, self.max_body_bytes)
        if self.media != _JSON_MEDIA:
            limit = self.max_body_bytes
        if self.length is not None and self.length > limit:
            raise body_too_large(limit, self.media)
        if self.length and self.length > UNBUDGETED_BYTES:
            self.runtime.inflight.take(self.scope, self.length)
        return limit

    def _count(self, received: int, size: int, limit: int) -> None:
        """``size`` more bytes arrived, ``received`` in all: past the limit, TooLarge; without
        a declared length, they are held in the in-flight budget as they come."""
        if received > limit:
            raise body_too_large(limit, self.media)
        if self.length is None and received > UNBUDGETED_BYTES:
            self.runtime.inflight.take(self.scope, size)


def body_too_large(max_bytes: int, media: str = "") -> TooLarge:
    """The one 413 for a body over the limit, wherever it is noticed (header or stream)."""
    if media == _JSON_MEDIA:
        return TooLarge(
            f"the JSON body exceeds the limit of {max_bytes} bytes (max_json_bytes); send big "
            "arrays as application/x-npy"
        )
    return TooLarge(f"the request body exceeds the limit of {max_bytes} bytes")
