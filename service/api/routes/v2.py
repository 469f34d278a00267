"""The Open Inference Protocol (KServe v2) over HTTP: thin raw-ASGI routes over service.v2.DataPlane.

Errors are ``{"error": "..."}`` (what tritonclient reads) with the statuses of the v2 table
(service/v2/status.py). tritonclient sends infer bodies without a Content-Type: the body is
read raw and split at ``Inference-Header-Content-Length``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Path
from starlette.types import Scope

from service import offload
from service.activations import REGISTRY
from service.api.exchange import Exchange
from service.api.routing import AsgiRoute, Handler, Reply
from service.api.schemas import v2 as schemas
from service.codecs.v2_infer import CODINGS, deflate, inflate, read_body, write_body
from service.errors import InvalidInput, Overloaded, ServiceError, excerpt
from service.runtime import Runtime
from service.v2.dataplane import DataPlane
from service.v2.status import STATUS, status_for

JSON, BINARY = "application/json", "application/octet-stream"
HEADER_LENGTH = b"inference-header-content-length"
#: Answers up to this size are joined and sent in one message; bigger ones part by part.
SMALL_ANSWER_BYTES = 64 * 1024


class V2Route(AsgiRoute):
    """An AsgiRoute whose errors are v2 errors."""

    def error_answer(
        self, exc: ServiceError, scope: Scope
    ) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        extra = (
            {"Retry-After": str(max(1, round(exc.retry_after_s)))}
            if isinstance(exc, Overloaded)
            else {}
        )
        return status_for(exc).http, {"error": exc.message}, extra


#: The request headers an infer reads (the last of repeated ones wins).
_INFER_HEADERS = frozenset({HEADER_LENGTH, b"content-encoding", b"accept-encoding"})


def _text(value: bytes) -> str:
    """A header value as text: stripped, lower case."""
    return value.decode("latin-1").strip().lower()


def _path(exchange: Exchange) -> tuple[str, str]:
    params = exchange.scope.get("path_params", {})
    return params.get("model_name", ""), params.get("model_version", "")


def _header_length(value: bytes | None) -> int | None:
    if value is None or value.isdigit():  # the usual form: ASCII digits alone
        return None if value is None else int(value)
    text = _text(value)
    if not (text.isdigit() and text.isascii()):
        raise InvalidInput(
            f"Inference-Header-Content-Length must be a byte count, got {excerpt(text)}"
        )
    return int(text)


def _accepted_coding(accept: bytes) -> str | None:
    offered = [part.split(";")[0].strip() for part in _text(accept).split(",")]
    return next((coding for coding in CODINGS if coding in offered), None)


def infer_handler(plane: DataPlane) -> Handler:
    settings = plane.runtime.settings
    deadline_s = settings.request_timeout_ms / 1000
    max_json_bytes = settings.max_json_bytes

    async def infer(exchange: Exchange) -> Reply:
        params = exchange.scope["path_params"]
        headers = exchange.headers
        value = headers.get(HEADER_LENGTH)  # usually ASCII digits alone: no call to read it
        header_length = int(value) if value and value.isdigit() else _header_length(value)
        body: Any = await exchange.body()
        coding = headers.get(b"content-encoding")
        if coding is not None and _text(coding) not in ("", "identity"):
            body = await offload.in_thread(
                deadline_s, inflate, body, _text(coding), exchange.max_body_bytes
            )
        if len(body) <= offload.INLINE_BODY_BYTES:  # offload.by_size without its coroutine
            request = read_body(body, header_length, max_json_bytes)
        else:
            request = await offload.in_thread(
                deadline_s, read_body, body, header_length, max_json_bytes
            )
        response = await plane.infer(params["model_name"], params.get("model_version", ""), request)
        parts, length = write_body(response)
        extra = {} if length is None else {"Inference-Header-Content-Length": str(length)}
        accept = headers.get(b"accept-encoding")
        answer = None if accept is None else _accepted_coding(accept)
        if answer is not None:
            parts = [deflate(parts, answer)]
            extra["Content-Encoding"] = answer
        media = JSON if length is None else BINARY
        if len(parts) == 1 or sum(map(len, parts)) <= SMALL_ANSWER_BYTES:
            return Reply(b"".join(parts), media, extra)  # one message to the server
        return Reply(parts, media, extra)

    return infer


def _handlers(plane: DataPlane) -> dict[str, Handler]:
    """Every route's handler by operation name."""

    async def health_live(exchange: Exchange) -> dict[str, bool]:
        return {"live": plane.live()}

    async def health_ready(exchange: Exchange) -> dict[str, bool]:
        plane.runtime.check_ready()  # NotReady: 503 with the reason
        return {"ready": True}

    async def model_ready(exchange: Exchange) -> dict[str, Any]:
        name, version = _path(exchange)
        if not plane.model(name, version).ready:
            plane.runtime.check_ready()  # NotReady: 503 with the reason
        return {"name": name, "ready": True}

    async def server_metadata(exchange: Exchange) -> dict[str, Any]:
        return plane.server_metadata()

    async def model_metadata(exchange: Exchange) -> dict[str, Any]:
        return plane.model(*_path(exchange)).metadata()

    async def model_config(exchange: Exchange) -> dict[str, Any]:
        return plane.model(*_path(exchange)).config()

    async def model_stats(exchange: Exchange) -> dict[str, Any]:
        return plane.statistics(*_path(exchange))

    async def repository_index(exchange: Exchange) -> list[dict[str, str]]:
        return plane.repository_index()

    return {
        "live": health_live,
        "ready": health_ready,
        "model_ready": model_ready,
        "server": server_metadata,
        "metadata": model_metadata,
        "config": model_config,
        "stats": model_stats,
        "index": repository_index,
        "infer": infer_handler(plane),
    }


# The activations' names and version; the served classifier's are added once it is loaded
# (service/api/openapi.py).
ModelName = Annotated[
    str,
    Path(
        description="a model from POST /v2/repository/index",
        examples=["relu"],
        json_schema_extra={"enum": sorted(REGISTRY)},
    ),
]
ModelVersion = Annotated[
    str, Path(description="the model's version", examples=["1"], json_schema_extra={"enum": ["1"]})
]
_ERRORS = {
    status.http: {
        "model": schemas.V2Error,
        "description": "; ".join(
            kind.__name__ for kind, s in STATUS.items() if s.http == status.http
        ),
    }
    for status in STATUS.values()
}
#: (operation, method, path tail after /v2/models/{m}[/versions/{v}] or the full path, response
#: model, documentation); infer first: the router tries routes in order.
OPERATIONS: list[tuple[str, str, str, Any, str]] = [
    (
        "infer",
        "POST",
        "/infer",
        schemas.InferResponseBody,
        "Run the model (JSON tensors, or binary tensors after a JSON header of Inference-Header-Content-Length bytes).",
    ),
    ("live", "GET", "/v2/health/live", schemas.Live, "The server is live."),
    (
        "ready",
        "GET",
        "/v2/health/ready",
        schemas.ServerReady,
        "The server is ready (503 with the reason before).",
    ),
    ("server", "GET", "/v2", schemas.ServerMetadata, "Server name, version and extensions."),
    (
        "index",
        "POST",
        "/v2/repository/index",
        list[schemas.IndexEntry],
        "Every model and its state.",
    ),
    ("stats", "GET", "/v2/models/stats", schemas.ModelStatistics, "Statistics of every model."),
    (
        "model_ready",
        "GET",
        "/ready",
        Any,
        "The model is ready to infer (503 with the reason before).",
    ),
    ("metadata", "GET", "", schemas.ModelMetadata, "The model's inputs, outputs and platform."),
    (
        "config",
        "GET",
        "/config",
        dict[str, Any],
        "The model's configuration as Triton's ModelConfig JSON.",
    ),
    (
        "stats",
        "GET",
        "/stats",
        schemas.ModelStatistics,
        "The model's statistics: counts and cumulative ns per phase.",
    ),
]


def _documented(doc: str, versioned: bool) -> Callable[..., Any]:
    """A documentation endpoint: only its signature (path parameters) and docstring are used."""

    async def endpoint(**kwargs: Any) -> None:
        raise NotImplementedError  # documentation only: the AsgiRoute serves the requests

    kind = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("model_name", kind, annotation=ModelName)]
    if versioned:
        params.append(inspect.Parameter("model_version", kind, annotation=ModelVersion))
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__doc__ = doc
    return endpoint


def routes(runtime: Runtime, plane: DataPlane) -> list[AsgiRoute]:
    """Every v2 route, the versioned form of each model route included."""
    handlers = _handlers(plane)
    table: list[AsgiRoute] = []
    for operation, method, tail, model, doc in OPERATIONS:
        model_route = not tail.startswith("/v2")
        forms = [
            ("/v2/models/{model_name}", False),
            ("/v2/models/{model_name}/versions/{model_version}", True),
        ]
        for prefix, versioned in forms if model_route else [("", False)]:
            endpoint = _documented(doc, versioned) if model_route else _plain(doc)
            extra: dict[str, Any] = {"responses": _ERRORS}
            if operation == "infer":
                extra["openapi_extra"] = {"requestBody": schemas.INFER_BODY}
                extra["responses"] = {200: schemas.BINARY_ANSWER, **_ERRORS}
            table.append(
                V2Route(
                    prefix + tail,
                    endpoint,
                    handler=handlers[operation],
                    runtime=runtime,
                    methods=[method],
                    tags=["v2"],
                    response_model=None if model is Any else model,
                    name=f"v2_{operation}{'_versioned' if versioned else ''}",
                    headers=_INFER_HEADERS if operation == "infer" else frozenset(),
                    **extra,
                )
            )
    return table


def _plain(doc: str) -> Callable[..., Any]:
    async def endpoint() -> None:
        raise NotImplementedError  # documentation only: the AsgiRoute serves the requests

    endpoint.__doc__ = doc
    return endpoint
