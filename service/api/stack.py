"""The middleware stack: the guard outermost, then only the layers the service uses.

FastAPI wraps every request in ServerErrorMiddleware, ExceptionTelemetryMiddleware and
AppBodyLimitMiddleware before the user's middleware. Here the guard answers a 500 itself (JSON,
with the request id, the connection kept), telemetry is off and every body is read within its
limit by the routes' Exchange: those three layers would cost each request three more calls and
a wrapped ``send`` for nothing. The rest is FastAPI's own order: user middleware (CORS, which
must see a preflight before the guard asks it for a key), then the guard, ExceptionMiddleware
(HTTPException and the domain errors' handlers), AsyncExitStackMiddleware, the router.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp

from service.api.guard import Guard


def install(app: FastAPI, *, api_keys: Iterable[str]) -> None:
    """Build ``app``'s middleware stack as above when it first serves a request."""
    keys = list(api_keys)

    def build() -> ASGIApp:
        handlers = {k: v for k, v in app.exception_handlers.items() if k not in (500, Exception)}
        inner = AsyncExitStackMiddleware(app.router)
        stack: ASGIApp = Guard(
            ExceptionMiddleware(inner, handlers=handlers, debug=app.debug), api_keys=keys
        )
        for middleware in reversed(app.user_middleware):
            stack = middleware.cls(stack, *middleware.args, **middleware.kwargs)
        return stack

    app.build_middleware_stack = build  # type: ignore[method-assign]
