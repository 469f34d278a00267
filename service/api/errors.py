"""The one table from domain errors to HTTP statuses, and the handlers that apply it."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.responses import OrjsonResponse
from service.errors import (
    DeadlineExceeded,
    InvalidInput,
    ModelLoadError,
    NotFound,
    NotReady,
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
    TooLarge: 413,
    Overloaded: 503,
    DeadlineExceeded: 504,
    NotReady: 503,
    ModelLoadError: 503,
}


def status_for(exc: ServiceError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(
    status: int, detail: str, headers: Mapping[str, str] | None = None
) -> OrjsonResponse:
    """The one error shape: ``{"detail": "..."}``."""
    return OrjsonResponse({"detail": detail}, status_code=status, headers=dict(headers or {}))


def describe(exc: ServiceError, overload_status: int) -> tuple[int, str, dict[str, str]]:
    """Status, detail and headers for a domain error: the one mapping every transport uses."""
    if isinstance(exc, Overloaded):  # 503 or 429, as the operator chose; both say when to retry
        return overload_status, exc.message, {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    return status_for(exc), exc.message, {}


async def _service_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, ServiceError)
    status, detail, headers = describe(exc, request.app.state.settings.overload_status)
    return error_response(status, detail, headers)


async def _validation_error(request: Request, exc: Exception) -> OrjsonResponse:
    """Pydantic's error list, flattened into one readable line per problem."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return error_response(422, "; ".join(problems))


async def _http_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), exc.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
