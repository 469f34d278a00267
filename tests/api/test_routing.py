"""The raw-ASGI routes' own transport work: streamed bodies, limits, readiness, root path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from service.app import create_app
from service.config import Settings


async def _streamed(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def test_a_streamed_body_over_the_limit_is_refused_while_it_is_read(dry_run_model: Path) -> None:
    """No Content-Length (chunked): the route counts the bytes and stops at the limit."""
    app = create_app(Settings(model_path=dry_run_model, max_body_bytes=4096, max_json_bytes=1024))

    async def scenario() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://relu-serve"
            ) as client:
                body = _streamed([b'{"inputs": [' + b"0, " * 300, b"0" * 2000 + b"]}"])
                return await client.post(
                    "/predict", content=body, headers={"content-type": "application/json"}
                )

    answer = asyncio.run(scenario())
    assert answer.status_code == 413
    assert answer.json()["detail"] == (
        "the JSON body exceeds the limit of 1024 bytes (max_json_bytes); send big arrays as "
        "application/x-npy"
    )


def test_before_start_up_the_route_answers_503_with_the_reason(dry_run_model: Path) -> None:
    app = create_app(Settings(model_path=dry_run_model))  # lifespan not run: nothing loaded

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relu-serve") as client:
            return await client.post("/predict", json={"inputs": [[0] * 8] * 8})

    answer = asyncio.run(scenario())
    assert answer.status_code == 503
    assert answer.json()["detail"] == "not ready: the application has not started"


def test_every_route_that_takes_a_body_reads_it_within_the_limit(dry_run_model: Path) -> None:
    """The body limit lives where bodies are read (Exchange); no other route may read one."""
    from fastapi.routing import APIRoute

    from service.api.routing import AsgiRoute

    app = create_app(Settings(model_path=dry_run_model))
    with_bodies = [
        route
        for route in app.routes
        if isinstance(route, APIRoute) and (route.methods or set()) & {"POST", "PUT", "PATCH"}
    ]
    assert {route.path for route in with_bodies} == {
        "/predict",
        "/activate",
        "/explain",
        "/regions",
        "/regions/plane",
        "/v2/repository/index",
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer",
    }
    assert all(isinstance(route, AsgiRoute) for route in with_bodies)


def test_a_raw_asgi_route_answers_other_methods_405_as_the_framework_does(
    dry_run_model: Path,
) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(Settings(model_path=dry_run_model))) as client:
        for path in ("/predict", "/activate"):
            response = client.get(path)
            assert response.status_code == 405, path
            assert response.headers["allow"] == "POST"
            assert response.json()["detail"] == "Method Not Allowed"


def _routers_choice(app: object, scope: dict[str, object]) -> tuple[object, dict[str, object]]:
    """The route the router serves a request with (its first full match), and its child scope."""
    from starlette.routing import Match

    for route in app.router.routes:  # type: ignore[attr-defined]
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child
    return None, {}


def test_the_guard_serves_a_raw_route_only_where_the_router_would(dry_run_model: Path) -> None:
    """RawRoutes reads the router's own table: for every request it serves from the guard, the
    router's first full match is that same route with the same path parameters; every other
    request (another route, a 405, a 404) it leaves to the router."""
    from fastapi.routing import APIRoute

    from service.api.routing import AsgiRoute, RawRoutes

    app = create_app(Settings(model_path=dry_run_model))
    raw = RawRoutes(app.router.routes, app.router)
    assert len(raw.routes) == sum(isinstance(r, AsgiRoute) for r in app.router.routes)
    paths = [
        *(
            route.path.replace("{model_name}", "relu").replace("{model_version}", "1")
            for route in app.router.routes
            if isinstance(route, APIRoute)
        ),
        "/v2/models/a/b/infer",
        "/predict/",
        "/nothing",
        "/v2/models/relu/versions/1/b",
    ]
    served = 0
    for root in ("", "/api"):
        for path in paths:
            for method in ("GET", "POST", "PUT"):
                scope: dict[str, object] = {
                    "type": "http",
                    "path": root + path,
                    "root_path": root,
                    "method": method,
                }
                route, child = _routers_choice(app, dict(scope))
                mine = dict(scope)
                found = raw.find(mine)
                if isinstance(route, AsgiRoute):
                    assert found == route.serve, (root, path, method)
                    assert mine["route"] is route
                    assert mine["path_params"] == child["path_params"]
                    served += 1
                else:
                    assert found is None, (root, path, method)
    assert served >= 2 * len(raw.routes)
