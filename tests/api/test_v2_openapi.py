"""The v2 routes in the OpenAPI document, with examples that are what the server answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.schemas.v2 import (
    INFER_EXAMPLES,
    InferRequestBody,
    InferResponseBody,
    ModelMetadata,
)


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()


V2_PATHS = [
    ("get", "/v2"),
    ("get", "/v2/health/live"),
    ("get", "/v2/health/ready"),
    ("post", "/v2/repository/index"),
    ("get", "/v2/models/stats"),
    *(
        (method, f"/v2/models/{{model_name}}{version}{tail}")
        for version in ("", "/versions/{model_version}")
        for method, tail in (
            ("get", ""),
            ("get", "/ready"),
            ("get", "/config"),
            ("get", "/stats"),
            ("post", "/infer"),
        )
    ),
]


@pytest.mark.parametrize(("method", "path"), V2_PATHS)
def test_every_v2_route_is_documented_with_v2_errors(document, method, path) -> None:
    operation = document["paths"][path][method]
    assert operation["tags"] == ["v2"]
    assert operation["description"] or operation["summary"]
    for status in ("400", "404", "503"):
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/V2Error"}


def test_model_names_and_versions_are_listed_with_the_classifier(document) -> None:
    parameters = document["paths"]["/v2/models/{model_name}/versions/{model_version}"]["get"][
        "parameters"
    ]
    names, versions = (p["schema"]["enum"] for p in parameters)
    assert names[0] == "relu_cnn"
    assert names.count("relu_cnn") == 1
    assert {"relu", "gelu", "swish"} <= set(names)
    assert versions == ["1.0.0", "1"]


def test_the_infer_examples_are_accepted(client: TestClient, document) -> None:
    body = document["paths"]["/v2/models/{model_name}/infer"]["post"]["requestBody"]
    examples = body["content"]["application/json"]["examples"]
    assert examples == INFER_EXAMPLES
    for (name, example), model in zip(examples.items(), ["relu", "gelu"], strict=True):
        InferRequestBody.model_validate(example["value"])
        response = client.post(f"/v2/models/{model}/infer", json=example["value"])
        assert response.status_code == 200, (name, response.text)


def test_the_response_examples_are_real_answers(client: TestClient) -> None:
    shown = InferResponseBody.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
    example = INFER_EXAMPLES["relu, JSON in and out"]["value"]
    assert client.post("/v2/models/relu/infer", json=example).json() == shown
    meta = ModelMetadata.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
    assert client.get("/v2/models/relu_cnn").json() == meta
