"""Guard: the one ASGI middleware in front of every route: request id, API keys, HEAD, the 500.

One pure-ASGI layer instead of a stack of BaseHTTPMiddleware classes: it costs one function
call and one wrapped ``send`` per request. It

- takes the client's ``X-Request-ID`` when it is sane (else makes one), puts it on every
  response, in the scope (``request.state.request_id``, error bodies) and in every log line;
- with API keys set, answers 401 to a request without a valid one (constant-time compare), all
  routes but the probes and the docs pages;
- answers HEAD on every GET route (starlette's routes do; FastAPI's do not), without the body;
- turns any exception a route let through into one logged traceback and a JSON 500 with the
  request id, so that the keep-alive connection stays usable;
- adds the security headers to the docs pages;
- counts every answer it sees in the request metrics (route template, method, status,
  duration) and writes the access line (always for a 5xx): the layers inside it (routes,
  error handlers, its own 401 and 500) all answer through it. What it cannot see: 408 and 431
  (server.py answers them before a request reaches the app), uvicorn's own 503 past
  max_connections and 400 for unparsable HTTP, and CORS preflights (the CORS layer is outside).
"""

from __future__ import annotations

import hmac
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import REQUEST_ID
from service.metrics import UNMATCHED, Tally

log = logging.getLogger("relu_serve")
access = logging.getLogger("relu_serve.access")

#: What a client's X-Request-ID may look like to be taken as it is.
_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
#: Paths open without an API key: probes and the pages (the playground asks for a key
#: itself when the API needs one).
OPEN_PATHS = (
    "/healthz",
    "/readyz",
    "/v2/health",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/static-offline-docs",
    "/playground",
)
_DOCS_PATHS = ("/docs", "/redoc", "/static-offline-docs")
_PAGE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_DOCS_HEADERS = [
    *_PAGE_HEADERS,
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'unsafe-inline'; "
        b"style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    ),
]
#: The playground runs no inline script and talks to this origin only.
_PLAYGROUND_HEADERS = [
    *_PAGE_HEADERS,
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'none'",
    ),
]


_PAGE_PATHS = (*_DOCS_PATHS, "/playground")


def _page_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The security headers of the pages a browser renders (``path`` is one of _PAGE_PATHS)."""
    return _DOCS_HEADERS if path.startswith(_DOCS_PATHS) else _PLAYGROUND_HEADERS


def _no_route(scope: Scope) -> None:
    return None


class Guard:
    """The middleware; ``api_keys`` empty means no authentication. ``meter`` counts the answers
    (None: metrics off), ``access_log`` logs a line per request, ``open_paths`` are served
    without a key, ``resolve`` names the route of a request the router never saw (a 401),
    ``find`` returns the app of a route the guard serves itself (service.api.routing.RawRoutes),
    None for the rest, which go to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: Iterable[str] = (),
        meter: Tally | None = None,
        access_log: bool = False,
        open_paths: tuple[str, ...] = OPEN_PATHS,
        resolve: Callable[[Scope], str] = lambda scope: UNMATCHED,
        find: Callable[[Scope], ASGIApp | None] = _no_route,
    ) -> None:
        self.app = app
        self.keys = [key.encode() for key in api_keys]
        self.meter = meter
        self.access_log = access_log
        self.open_paths = open_paths
        self.resolve = resolve
        self.find = find

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        begun = time.perf_counter()
        request_id = _request_id(scope["headers"])
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        extra = [(b"x-request-id", request_id.encode())]
        extra += _page_headers(path) if path.startswith(_PAGE_PATHS) else ()
        method = scope["method"]
        head = method == "HEAD"
        if head:
            scope["method"] = "GET"
        status = 0

        async def guarded_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            if self.keys and not path.startswith(self.open_paths) and not self._allowed(scope):
                await _unauthorized(guarded_send, request_id, v2=_is_v2(path))
            else:
                await (self.find(scope) or self.app)(scope, receive, guarded_send)
        except Exception:
            log.exception("internal error while serving %s %s", method, path)
            if not status:
                await _internal_error(guarded_send, request_id, v2=_is_v2(path))
        finally:
            if status:
                self._account(scope, method, path, status, time.perf_counter() - begun)
            REQUEST_ID.reset(token)

    def _account(self, scope: Scope, method: str, path: str, status: int, seconds: float) -> None:
        """The request's metrics and its access line."""
        route = scope.get("route")
        if route is not None:
            template = route.path
        else:  # the router never matched it (404), or the guard answered first (401)
            template = self.resolve(scope) if status == 401 else UNMATCHED
        if self.meter is not None:
            self.meter.request(template, method, status, seconds)
        # A 5xx is logged even with the access log off; /readyz's 503 is an answer, not a fault.
        if self.access_log or (status >= 500 and template != "/readyz"):
            images = scope["state"].get("images")
            access.log(
                logging.ERROR if status >= 500 else logging.INFO,
                "%s %s %d %.2f ms%s",
                method,
                path,
                status,
                seconds * 1000,
                "" if images is None else f" images={images}",
                extra={
                    "route": template,
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "images": images,
                },
            )

    def _allowed(self, scope: Scope) -> bool:
        """Whether the request carries one of the keys; every key is compared, in constant time."""
        given = _presented_key(scope["headers"])
        if given is None:
            return False
        found = False
        for key in self.keys:
            found |= hmac.compare_digest(key, given)
        return found


def _request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id" and _SANE_ID.fullmatch(value):
            return value.decode("ascii")
    return f"{_PROCESS}{next(_SERIAL):08x}"


#: Made ids: 8 random hex digits per process, then a serial number (unique, and ~20x cheaper
#: than secrets.token_hex per request; they need not be secret).
_PROCESS = secrets.token_hex(4)
_SERIAL = itertools.count(1)


def _presented_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"x-api-key":
            return value.strip()
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip()
    return None


def _is_v2(path: str) -> bool:
    """Open Inference Protocol paths: their errors also carry ``error`` (tritonclient reads it)."""
    return path == "/v2" or path.startswith("/v2/")


def _document(detail: str, request_id: str, v2: bool) -> dict[str, str]:
    document = {"detail": detail, "request_id": request_id}
    return {**document, "error": detail} if v2 else document


async def _unauthorized(send: Send, request_id: str, *, v2: bool) -> None:
    detail = "an API key is required: send it as Authorization: Bearer <key> or X-API-Key: <key>"
    await _json(
        send,
        401,
        _document(detail, request_id, v2),
        [(b"www-authenticate", b'Bearer realm="relu-serve"')],
    )


async def _internal_error(send: Send, request_id: str, *, v2: bool) -> None:
    await _json(send, 500, _document("internal error", request_id, v2), [])


async def _json(
    send: Send, status: int, document: dict[str, str], headers: list[tuple[bytes, bytes]]
) -> None:
    body = orjson.dumps(document)
    start = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
