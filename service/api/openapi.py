"""The OpenAPI document's security part: the API-key schemes, required only when keys are set."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service.api.guard import OPEN_PATHS

SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
UNAUTHORIZED = {
    "description": "no valid API key (only when RELU_SERVE_API_KEYS is set)",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    "content": {
        "application/json": {
            "example": {
                "detail": "an API key is required: send it as Authorization: Bearer <key> or "
                "X-API-Key: <key>",
                "request_id": "6f1c2a9e04b3d781",
            }
        }
    },
}


def install(app: FastAPI, *, keys_required: bool) -> None:
    """Make ``app.openapi()`` name the key schemes; with keys set, every operation outside the
    probes and docs requires one and documents its 401 (Swagger UI's Authorize button)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        document.setdefault("components", {})["securitySchemes"] = SCHEMES
        if keys_required:
            for path, operations in document["paths"].items():
                if path.startswith(OPEN_PATHS):
                    continue
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
                    operation.setdefault("responses", {})["401"] = UNAUTHORIZED
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
