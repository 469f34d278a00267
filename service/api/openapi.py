"""The OpenAPI document's security part: the API-key schemes, required only when keys are set."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service.api.guard import OPEN_PATHS
from service.api.schemas.predict import JSON, MULTIPART, inputs_schema
from service.runtime import Runtime

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


def install(app: FastAPI, runtime: Runtime, *, keys_required: bool) -> None:
    """Make ``app.openapi()`` name the key schemes (with keys set, every operation outside the
    probes and docs requires one and documents its 401: Swagger UI's Authorize button) and
    describe /predict's inputs with the served model's shape, range and labels once it is
    loaded (until then, the default digits model's)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        loaded = runtime.classifier is not None
        if loaded:
            _describe_model(document, runtime)
        document.setdefault("components", {})["securitySchemes"] = SCHEMES
        if keys_required:
            for path, operations in document["paths"].items():
                if path.startswith(OPEN_PATHS):
                    continue
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
                    operation.setdefault("responses", {})["401"] = UNAUTHORIZED
        if loaded:  # else built again once the model is there
            app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _describe_model(document: dict[str, Any], runtime: Runtime) -> None:
    assert runtime.classifier is not None
    meta = runtime.classifier.metadata
    _, height, width = meta.input_shape
    low, high = meta.input_range
    content = document["paths"]["/predict"]["post"]["requestBody"]["content"]
    json_properties = content[JSON]["schema"]["properties"]
    json_properties["inputs"] = inputs_schema(height, width, low, high)
    for properties in (json_properties, content[MULTIPART]["schema"]["properties"]):
        properties["top_k"]["maximum"] = meta.num_classes
    _name_v2_classifier(document, meta.name, meta.version)


def _name_v2_classifier(document: dict[str, Any], name: str, version: str) -> None:
    """The served classifier among the v2 routes' model names and versions."""
    added = {"model_name": name, "model_version": version}
    for path, operations in document["paths"].items():
        if not path.startswith("/v2/models/{model_name}"):
            continue
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                value, enum = added.get(parameter["name"]), parameter["schema"].get("enum")
                if value is not None and enum is not None and value not in enum:
                    parameter["schema"]["enum"] = [value, *enum]
