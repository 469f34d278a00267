"""The one table from domain errors to HTTP statuses: the handlers and the OpenAPI docs use it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.responses import OrjsonResponse
from service.api.schemas.health import ErrorDetail
from service.errors import (
    DeadlineExceeded,
    GeometryUnavailable,
    InvalidInput,
    ModelLoadError,
    MonitorOff,
    NotFound,
    NotReady,
    OodUnavailable,
    Overloaded,
    ServiceError,
    TooLarge,
    UnsupportedMediaType,
)

#: Domain error -> HTTP status. Looked up along the MRO, so a subclass inherits its parent's status.
STATUS: dict[type[ServiceError], int] = {
    ServiceError: 500,
    InvalidInput: 422,
    UnsupportedMediaType: 415,
    NotFound: 404,
    MonitorOff: 404,
    TooLarge: 413,
    Overloaded: 503,
    DeadlineExceeded: 504,
    NotReady: 503,
    ModelLoadError: 503,
    GeometryUnavailable: 501,
    OodUnavailable: 501,
}

#: A real message of each error, as the service words it with its default settings (the tests
#: provoke each one and compare): the examples of the OpenAPI document.
EXAMPLES: dict[type[ServiceError], tuple[str, str]] = {
    InvalidInput: ("bad input", "top_k must be between 1 and 10 (the labels), got 0"),
    UnsupportedMediaType: (
        "unsupported content type",
        "Content-Type 'text/plain' is not accepted; send application/json, multipart/form-data "
        "(image files) or application/x-npy",
    ),
    NotFound: (
        "unknown name",
        "unknown activation function 'relu7'; valid names: celu, elu, gelu, glu, hardshrink, "
        "hardsigmoid, hardswish, hardtanh, leaky_relu, log_softmax, logsigmoid, mish, prelu, "
        "relu, relu6, rrelu, selu, sigmoid, silu, softmax, softplus, softshrink, softsign, "
        "swish, tanh, tanhshrink, threshold",
    ),
    MonitorOff: (
        "the monitor is off",
        "the ReLU monitor is off (RELU_SERVE_MONITOR=false or a model without activation "
        "layers in its metadata)",
    ),
    TooLarge: ("over a limit", "the request body exceeds the limit of 134217728 bytes"),
    Overloaded: (
        "queue full (429 with RELU_SERVE_OVERLOAD_STATUS=429); Retry-After says when to retry",
        "the queue is full (4096 images waiting, limit 4096); retry shortly",
    ),
    DeadlineExceeded: (
        "waited past request_timeout_ms",
        "the request waited more than 30000 ms (request_timeout_ms) and was dropped",
    ),
    NotReady: ("not ready", "not ready: warming up at batch sizes 1, 8, 64, 512, 1024"),
    GeometryUnavailable: (
        "the model has ops the geometry evaluator lacks",
        "the geometry endpoints cannot evaluate this model: unsupported ops Softsign "
        "(supported: Add, Conv, Div, Elu, Erf, Flatten, Gemm, Identity, LeakyRelu, MatMul, "
        "MaxPool, Mul, Relu, Reshape, Sigmoid, Sub, Tanh); /predict is unaffected",
    ),
    OodUnavailable: (
        "the model has no OOD reference patterns",
        "this model carries no OOD reference patterns (exported before they existed); "
        "re-export it with `python -m model_export` to get return_ood",
    ),
}


def is_v2(scope: Mapping[str, Any]) -> bool:
    """Whether a request is one of the Open Inference Protocol's (path /v2 or under it)."""
    path = str(scope.get("path", "")).removeprefix(str(scope.get("root_path", "")))
    return path == "/v2" or path.startswith("/v2/")


def status_for(exc: ServiceError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def describe(exc: ServiceError, overload_status: int) -> tuple[int, str, dict[str, str]]:
    """Status, detail and headers for a domain error: the one mapping every transport uses."""
    if isinstance(exc, Overloaded):  # 503 or 429, as the operator chose; both say when to retry
        return overload_status, exc.message, {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    return status_for(exc), exc.message, {}


def responses(*kinds: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that can raise ``kinds``: one entry per status,
    each with the real example message of every error that maps to it."""
    by_status: dict[int, list[type[ServiceError]]] = {}
    for kind in kinds:
        by_status.setdefault(STATUS[kind], []).append(kind)
        if kind is Overloaded:
            by_status.setdefault(429, []).append(kind)
    documented: dict[int | str, dict[str, Any]] = {}
    for status, errors in sorted(by_status.items()):
        examples = {
            EXAMPLES[e][0]: {"value": {"detail": EXAMPLES[e][1]}} for e in errors if e in EXAMPLES
        }
        documented[status] = {
            "model": ErrorDetail,
            "description": "; ".join(EXAMPLES[e][0] for e in errors if e in EXAMPLES),
            "content": {"application/json": {"examples": examples}},
        }
    return documented


def error_response(
    request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> OrjsonResponse:
    """The one error shape: ``{"detail": "...", "request_id": "..."}`` (and, under /v2, the
    same message as ``error``: what tritonclient reads)."""
    document = {"detail": detail, "request_id": request.scope.get("state", {}).get("request_id")}
    if is_v2(request.scope):
        document["error"] = detail
    return OrjsonResponse(document, status_code=status, headers=dict(headers or {}))


async def _service_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, ServiceError)
    status, detail, headers = describe(exc, request.app.state.settings.overload_status)
    return error_response(request, status, detail, headers)


async def _validation_error(request: Request, exc: Exception) -> OrjsonResponse:
    """Pydantic's error list, flattened into one readable line per problem."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}"[:200])
    return error_response(request, 422, "; ".join(problems))


async def _http_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(request, exc.status_code, str(exc.detail), exc.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
