"""AsgiRoute: a hot endpoint served in raw ASGI, yet one documented route of the routing table.

Measured on /predict: FastAPI's per-request work (dependency solving, query validation,
Request and Response objects) cost several times the model's 15-50 us on a one-image request.
Starlette routes accept a raw ASGI endpoint ("Endpoint is a class. Treat it as ASGI"); this
route keeps FastAPI's OpenAPI operation, built from a documentation signature as for any
route, and hands each request to the ASGI handler: ``--root-path``, 404/405 and the other
routes stay the framework's, and there is no second path to drift from it. RawRoutes lets the
guard serve the routing table's leading raw routes itself (the same routes, in the same order).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.convertors import StringConvertor
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import describe
from service.api.exchange import ClientGone, Exchange
from service.api.responses import ORJSON_OPTIONS
from service.errors import ServiceError
from service.offload import ByteBudget
from service.runtime import Runtime

Handler = Callable[[Exchange], Awaitable[Any]]
_JSON = [(b"content-type", b"application/json")]
_HELD = ByteBudget.KEY


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each field through object.__setattr__
class Reply:
    """An answer already rendered: the body (bytes, or its parts in order), its media type and
    extra headers. Parts are sent as they are, in pieces of at most a MiB, never joined."""

    body: bytes | Sequence[bytes | memoryview]
    media: str
    headers: Mapping[str, str] = field(default_factory=dict)


class AsgiRoute(APIRoute):
    """An APIRoute documented from ``endpoint`` and served by ``handler(exchange) -> answer``
    (``headers``: the request headers, lower case, the handler reads from the exchange).

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
        headers: frozenset[bytes] = frozenset(),
        **kwargs: Any,
    ) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.handler = handler
        #: The request headers (lower case) the handler reads from ``exchange.headers``.
        self.wanted = headers
        # Bound once per app: no app.state lookups (a Python __getattr__ each) per request.
        self.runtime = runtime
        self.max_body_bytes = runtime.settings.max_body_bytes
        self.app = self.serve
        #: The path's literal start ("/v2/models/" of "/v2/models/{model_name}/infer").
        self.literal = path.split("{", 1)[0]
        self.allowed = frozenset(self.methods or ())
        self.converted = [
            (key, convertor)
            for key, convertor in self.param_convertors.items()
            if not isinstance(convertor, StringConvertor)
        ]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Starlette's Route.matches in one call (the framework's costs four and a regex per
        route, and the router tries these routes first): no match at once when the path's
        literal start is nowhere in the request's path (it then cannot start the path under
        any root path). FastAPI's included-router context never applies: create_app puts these
        routes in the app's own table."""
        if self.literal not in scope.get("path", "") or scope["type"] != "http":
            return Match.NONE, {}
        child = self._child(scope, get_route_path(scope) if scope.get("root_path") else None)
        if child is None:
            return Match.NONE, {}
        return (Match.FULL if scope["method"] in self.allowed else Match.PARTIAL), child

    def _child(self, scope: Scope, route_path: str | None) -> Scope | None:
        """The child scope (endpoint, path parameters, route) when the path matches."""
        found = self.path_regex.match(scope["path"] if route_path is None else route_path)
        if found is None:
            return None
        params: dict[str, Any] = found.groupdict()
        for key, convertor in self.converted:  # a str parameter is its text as it is
            params[key] = convertor.convert(params[key])
        if scope.get("path_params"):
            params = {**scope["path_params"], **params}
        return {"endpoint": self.endpoint, "path_params": params, "route": self}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Straight to the handler for an allowed method; anything else (405) the framework's
        way. (FastAPI's handle first looks for an included router's context: these routes are
        placed in the app's own table by create_app, never included, so there is none.)"""
        if self.methods and scope["method"] in self.methods:
            await self.serve(scope, receive, send)
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

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One request of an allowed method, whatever routed it here."""
        runtime = self.runtime
        try:
            exchange = Exchange(scope, receive, runtime, self.max_body_bytes, self.wanted)
            answer = await self.handler(exchange)
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


class RawRoutes:
    """The AsgiRoutes at the head of the router's table, served from the guard: a request one
    of them matches fully (path and method) skips the layers between the guard and the router
    (exception handlers, exit stack, the router's loop), which it does not use: an AsgiRoute
    answers its domain errors itself and declares no dependencies. Everything else (other
    routes, 404, 405) goes down the stack, where the router tries the same routes first in the
    same order, so both reach the same route: there is one routing table, read twice."""

    def __init__(self, routes: Sequence[BaseRoute], router: ASGIApp) -> None:
        self.router = router
        self.routes: list[AsgiRoute] = []
        for route in routes:
            if not isinstance(route, AsgiRoute):
                break
            self.routes.append(route)
        self.literals = tuple(route.literal for route in self.routes)

    def find(self, scope: Scope) -> Callable[[Scope, Receive, Send], Awaitable[None]] | None:
        """The route that serves this http request, its path parameters and route put in the
        scope as the router puts them; None when none of these routes fully matches."""
        route_path = get_route_path(scope) if scope.get("root_path") else scope["path"]
        if not route_path.startswith(self.literals):
            return None
        method = scope["method"]
        for route in self.routes:
            if route_path.startswith(route.literal) and method in route.allowed:
                child = route._child(scope, route_path)
                if child is not None:
                    scope.update(child)
                    scope.setdefault("router", self.router)
                    return route.serve
        return None


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


def _encode(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    encoded = []
    for key, value in headers.items():  # a loop: a comprehension is one more call on 3.11
        encoded.append((key.lower().encode("latin-1"), value.encode("latin-1")))
    return encoded
