"""uvicorn's HTTP protocol with the limits it lacks: header size, header and body read timeouts.

uvicorn bounds idle keep-alive connections and concurrency but not a slow client: a
connection that sends its headers a byte at a time, or declares a body it never sends, is held
forever, and httptools accepts headers of any size (at a cost that grows with their square).
This subclass answers such clients as nginx does (431, 408) and closes their connections, and
counts those answers in the request metrics (the app never sees them). Those answers, and
uvicorn's 503 past ``limit_concurrency`` (plain text there), are JSON: ``{"error": ...}`` under
/v2 (what tritonclient reads), ``{"detail": ...}`` elsewhere.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as Cycle

from service.config import Settings

#: How long a refused connection is still read (and what arrives dropped) before it is closed.
LINGER_S = 2.0


def error_document(path: bytes, message: str) -> bytes:
    """An error body in the dialect of the path: the v2 protocol's or the service's own."""
    target = path.split(b"?", 1)[0]
    key = "error" if target == b"/v2" or target.startswith(b"/v2/") else "detail"
    return orjson.dumps({key: message})


class GuardedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with ``max_header_bytes``, ``header_timeout_s`` and ``body_timeout_s``
    (class attributes, set once from the settings by ``configure``)."""

    max_header_bytes = 64 * 1024
    header_timeout_s = 10.0
    body_timeout_s = 30.0
    #: Count refusals in relu_serve_requests_total and the duration histogram (RELU_SERVE_METRICS).
    count = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._in_headers = True
        self._in_body = False
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._began = 0.0
        #: A request began in the data being parsed (its header timer is not armed yet).
        self._begun = False

    @classmethod
    def configure(cls, settings: Settings) -> None:
        cls.max_header_bytes = settings.max_header_bytes
        cls.header_timeout_s = settings.header_timeout_s
        cls.body_timeout_s = settings.body_timeout_s
        cls.count = settings.metrics

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._began = self.loop.time()
        self._arm(self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return  # refused: what the client still sends is read and dropped
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._in_headers and self._header_bytes > self.max_header_bytes:
            self._refuse(
                431,
                "Request Header Fields Too Large",
                f"the request headers exceed the limit of {self.max_header_bytes} bytes",
            )
        elif self._in_body or (self._in_headers and self._begun):
            # Part of a request is still to come: its timer runs from now (a body's restarts
            # with each piece). Armed here, not as the parser reaches each part: a request
            # that arrives whole (the usual case) then never arms one.
            self._begun = False
            self._arm(self.body_timeout_s if self._in_body else self.header_timeout_s)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began = self.loop.time()
        self._begun = True
        if not self._in_headers:  # the next request on a kept-alive connection
            self._in_headers, self._header_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._timer is not None:
            self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self._in_headers and self._header_bytes == 0 and self.cycle is not None:
            # Idle between requests: the keep-alive timer's business, not ours.
            return
        what, seconds = (
            ("headers", self.header_timeout_s)
            if self._in_headers
            else ("body", self.body_timeout_s)
        )
        self._refuse(
            408, "Request Timeout", f"the request {what} did not arrive within {seconds:g} s"
        )

    def _start_asgi_task(self, cycle: Cycle, app: Any) -> None:
        # uvicorn hands a request past limit_concurrency to its plain-text 503 app.
        super()._start_asgi_task(cycle, _overloaded if app is service_unavailable else app)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        """Answer ``status`` with Connection: close unless a response has begun, then close.

        The close lingers (as nginx's does): closing a socket with unread input sends a reset,
        which would destroy the answer before a client still sending could read it.
        """
        self._disarm()
        self._in_headers = self._in_body = False
        if self.transport.is_closing() or self._closing:
            return
        self._closing = True
        if self.cycle is None or not self.cycle.response_started:
            # No request line yet on a connection that sent nothing: uvicorn has no url then.
            body = error_document(getattr(self, "url", b""), message)
            head = (
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head.encode() + body)
            if self.count:
                self._account(status)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def _account(self, status: int) -> None:
        """Count the refusal as a request of no route (the app has not matched one, or never
        answers it), timed from its first byte (or the connection's start)."""
        from service.metrics import TALLY, UNMATCHED  # imported by the app long before: free

        # httptools reads the method before the URL; before both its get_method() is garbage.
        known = getattr(self, "url", b"")  # uvicorn's: reset per request, grown by on_url
        method = self.parser.get_method().decode("ascii", "replace") if known else "other"
        TALLY.request(UNMATCHED, method, status, self.loop.time() - self._began)


async def _overloaded(scope: Any, receive: Any, send: Any) -> None:
    """The 503 of a request past limit_concurrency (max_connections), as JSON."""
    path = scope["raw_path"][len(scope["root_path"].encode("ascii")) :]
    body = error_document(
        path, "the server is at its connection limit (max_connections); retry shortly"
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    if GuardedHttpProtocol.count:
        from service.metrics import TALLY, UNMATCHED

        TALLY.request(UNMATCHED, scope["method"], 503, 0.0)
