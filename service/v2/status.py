"""The one table from domain errors to v2 statuses: the HTTP status and the gRPC code name."""

from __future__ import annotations

from typing import NamedTuple

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


class Status(NamedTuple):
    http: int
    grpc: str
    """A ``grpc.StatusCode`` member's name (this package imports no transport)."""


#: Domain error -> v2 status, looked up along the MRO. Triton's map: bad input 400 /
#: INVALID_ARGUMENT, unknown model or version 404 / NOT_FOUND, not ready or queue full 503 /
#: UNAVAILABLE, anything else 500 / INTERNAL.
STATUS: dict[type[ServiceError], Status] = {
    ServiceError: Status(500, "INTERNAL"),
    InvalidInput: Status(400, "INVALID_ARGUMENT"),
    UnsupportedMediaType: Status(400, "INVALID_ARGUMENT"),
    NotFound: Status(404, "NOT_FOUND"),
    TooLarge: Status(413, "RESOURCE_EXHAUSTED"),
    Overloaded: Status(503, "UNAVAILABLE"),
    NotReady: Status(503, "UNAVAILABLE"),
    ModelLoadError: Status(503, "UNAVAILABLE"),
    DeadlineExceeded: Status(504, "DEADLINE_EXCEEDED"),
}


def status_for(exc: ServiceError) -> Status:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return STATUS[ServiceError]
