"""Exchange: one request as a raw-ASGI handler sees it: media type, query options, and the body
read within its limits and the worker's in-flight budget."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import Message, Receive, Scope

from service.codecs import Body
from service.errors import TooLarge
from service.runtime import Runtime

_JSON_MEDIA = "application/json"
#: Bodies up to this size are not counted in max_inflight_bytes: max_connections of them hold
#: at most 128 MiB at the defaults, and the common small request skips the bookkeeping.
UNBUDGETED_BYTES = 64 * 1024


#: Content-Type values as clients send them most often, and the media type each one names.
_MEDIA = {
    value.encode(): value
    for value in ("application/json", "application/x-npy", "application/x-npz")
}


def _media_type(value: bytes) -> str:
    """The media type of a Content-Type value: lower case, parameters dropped."""
    return value.decode("latin-1").split(";", 1)[0].strip().lower()


class ClientGone(Exception):
    """The client disconnected before its body arrived: there is no one to answer."""


class Exchange:
    """One request as a handler sees it: media type, query options, the body within a limit,
    and the raw values of the other headers its route reads (``headers``: the last of repeated
    ones), all found in one pass over the request's headers."""

    __slots__ = ("headers", "length", "max_body_bytes", "media", "receive", "runtime", "scope")

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        runtime: Runtime,
        max_body_bytes: int,
        wanted: frozenset[bytes] = frozenset(),
    ) -> None:
        self.scope, self.receive, self.runtime = scope, receive, runtime
        self.max_body_bytes = max_body_bytes
        self.media, self.length = "", None
        self.headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            if key == b"content-type":
                self.media = _MEDIA.get(value) or _media_type(value)
            elif key == b"content-length" and value.isdigit():
                self.length = int(value)
            elif key in wanted:
                self.headers[key] = value

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
            if received > min(limit, UNBUDGETED_BYTES):  # else nothing to refuse or hold
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
