"""Schemas of the Open Inference Protocol (KServe v2) routes, with true examples."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Scalar = str | int | float | bool


class V2Error(BaseModel):
    """Every v2 error: tritonclient reads ``error``."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "unknown model 'resnet'; models: relu_cnn, ..."}]}
    )

    error: str


class Live(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ServerMetadata(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "relu-serve",
                    "version": "0.1.0",
                    "extensions": [
                        "binary_tensor_data",
                        "classification",
                        "model_configuration",
                        "statistics",
                    ],
                }
            ]
        }
    )

    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks a dimension of any size")


class ModelMetadata(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "relu_cnn",
                    "versions": ["1.0.0"],
                    "platform": "onnxruntime_onnx",
                    "inputs": [
                        {"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]},
                        {"name": "images", "datatype": "BYTES", "shape": [-1]},
                    ],
                    "outputs": [
                        {"name": "logits", "datatype": "FP32", "shape": [-1, 10]},
                        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                    ],
                }
            ]
        }
    )

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: list[dict[str, Any]] | None = Field(
        None, description="activation models: the function's parameters"
    )


class RequestInput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Scalar] | None = None
    data: Any = Field(None, description="nested or flat, row-major; absent with binary_data_size")


class RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Scalar] | None = Field(
        None, description='{"binary_data": true} for a blob, {"classification": N} for top N'
    )


class InferRequestBody(BaseModel):
    """The JSON form; with the binary extension, blobs follow the JSON header."""

    id: str | None = None
    parameters: dict[str, Scalar] | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Scalar] | None = None
    data: list[Any] | None = None


class InferResponseBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "relu",
                    "model_version": "1",
                    "id": "42",
                    "outputs": [
                        {
                            "name": "value",
                            "datatype": "FP32",
                            "shape": [3],
                            "data": [0.0, 0.0, 2.0],
                        },
                        {"name": "grad", "datatype": "FP32", "shape": [3], "data": [0.0, 0.0, 1.0]},
                    ],
                }
            ]
        }
    )

    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


INFER_EXAMPLES: dict[str, dict[str, Any]] = {
    "relu, JSON in and out": {
        "value": {
            "id": "42",
            "inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [-1.0, 0.0, 2.0]}],
        }
    },
    "gelu with a parameter and an upstream gradient": {
        "value": {
            "parameters": {"approximate": "tanh"},
            "inputs": [
                {"name": "x", "shape": [2], "datatype": "FP64", "data": [-1.0, 1.0]},
                {"name": "grad_output", "shape": [2], "datatype": "FP64", "data": [1.0, 0.5]},
            ],
            "outputs": [{"name": "value"}, {"name": "vjp"}],
        }
    },
}


class IndexEntry(BaseModel):
    name: str
    version: str
    state: str


class ModelStatistics(BaseModel):
    model_stats: list[dict[str, Any]]


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic schema with its ``$defs`` references replaced by the definitions: inside an
    OpenAPI document, ``#/$defs/...`` would point at the document's root."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


BINARY_ANSWER: dict[str, Any] = {
    "description": "JSON, or with binary outputs (binary_data) the JSON header of "
    "Inference-Header-Content-Length bytes followed by the outputs' bytes",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}
INFER_BODY: dict[str, Any] = {
    "required": True,
    "description": "JSON as below. With the binary tensor extension (tritonclient's default), the "
    "body is this JSON header (Inference-Header-Content-Length bytes), then each binary tensor's "
    "bytes in the order of the tensors, sized by its parameters.binary_data_size; any "
    "Content-Type (tritonclient sends none), Content-Encoding gzip or deflate.",
    "content": {
        "application/json": {
            "schema": _inlined(InferRequestBody.model_json_schema()),
            "examples": INFER_EXAMPLES,
        },
    },
}
