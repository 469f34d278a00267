"""uvicorn's HTTP protocol with the limits it lacks: header size, header and body read timeouts.

uvicorn bounds idle keep-alive connections and concurrency but not a slow client: a
connection that sends its headers a byte at a time, or declares a body it never sends, is held
forever, and httptools accepts headers of any size (at a cost that grows with their square).
This subclass answers such clients as nginx does (431, 408) and closes their connections.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.config import Settings

#: How long a refused connection is still read (and what arrives dropped) before it is closed.
LINGER_S = 2.0


class GuardedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with ``max_header_bytes``, ``header_timeout_s`` and ``body_timeout_s``
    (class attributes, set once from the settings by ``configure``)."""

    max_header_bytes = 64 * 1024
    header_timeout_s = 10.0
    body_timeout_s = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._in_headers = True
        self._in_body = False
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False

    @classmethod
    def configure(cls, settings: Settings) -> None:
        cls.max_header_bytes = settings.max_header_bytes
        cls.header_timeout_s = settings.header_timeout_s
        cls.body_timeout_s = settings.body_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return  # refused: what the client still sends is read and dropped
        if self._in_headers:
            self._header_bytes += len(data)
        elif self._in_body:
            self._arm(self.body_timeout_s)
        super().data_received(data)
        if self._in_headers and self._header_bytes > self.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_headers:  # the next request on a kept-alive connection
            self._in_headers, self._header_bytes = True, 0
            self._arm(self.header_timeout_s)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._in_body = True
        self._arm(self.body_timeout_s)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
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
        self._refuse(408, "Request Timeout")

    def _refuse(self, status: int, reason: str) -> None:
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
            body = f'{{"detail": "{reason}"}}'.encode()
            head = (
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head.encode() + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)
