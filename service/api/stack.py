"""The middleware stack: the guard outermost, then only the layers the service uses.

FastAPI wraps every request in ServerErrorMiddleware, ExceptionTelemetryMiddleware and
AppBodyLimitMiddleware before the user's middleware. Here the guard answers a 500 itself (JSON,
with the request id, the connection kept), telemetry is off and every body is read within its
limit by the routes' Exchange: those three layers would cost each request three more calls and
a wrapped ``send`` for nothing. The rest is FastAPI's own order: user middleware (CORS, which
must see a preflight before the guard asks it for a key), then the guard, ExceptionMiddleware
(HTTPException and the domain errors' handlers), AsyncExitStackMiddleware, the router. The
raw routes at the head of the routing table (service.api.routing.RawRoutes) are served from the
guard: they use none of the layers between it and the router.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from fastapi import FastAPI
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import compile_path
from starlette.types import ASGIApp, Scope

from service.api.guard import OPEN_PATHS, Guard
from service.api.routing import RawRoutes
from service.config import Settings
from service.metrics import TALLY, UNMATCHED


def install(app: FastAPI, *, api_keys: Iterable[str], settings: Settings) -> None:
    """Build ``app``'s middleware stack as above when it first serves a request."""
    keys = list(api_keys)
    open_paths = (*OPEN_PATHS, "/metrics") if settings.metrics_public else OPEN_PATHS
    meter = TALLY if settings.metrics else None

    def build() -> ASGIApp:
        handlers = {k: v for k, v in app.exception_handlers.items() if k not in (500, Exception)}
        inner = AsyncExitStackMiddleware(app.router)
        stack: ASGIApp = Guard(
            ExceptionMiddleware(inner, handlers=handlers, debug=app.debug),
            api_keys=keys,
            meter=meter,
            access_log=settings.access_log,
            open_paths=open_paths,
            resolve=_resolver(app),
            find=RawRoutes(app.router.routes, app.router).find,
        )
        for middleware in reversed(app.user_middleware):
            stack = middleware.cls(stack, *middleware.args, **middleware.kwargs)
        return stack

    app.build_middleware_stack = build  # type: ignore[method-assign]


def _resolver(app: FastAPI) -> Callable[[Scope], str]:
    """The route template a request would reach, for one the guard refused before routing
    (a 401): matched against the documented paths, compiled on first use."""
    patterns: list[tuple[re.Pattern[str], str]] = []

    def resolve(scope: Scope) -> str:
        if not patterns:
            patterns.extend((compile_path(path)[0], path) for path in app.openapi()["paths"])
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        for pattern, template in patterns:
            if pattern.match(path):
                return template
        return UNMATCHED

    return resolve
