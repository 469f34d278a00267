"""Schema of GET /model: the model's metadata and how ONNX Runtime runs it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE: dict[str, Any] = {
    "name": "relu_cnn",
    "version": "1.0.0",
    "labels": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    "input_shape": [1, 8, 8],
    "input_range": [0.0, 16.0],
    "normalization": {"mean": 0.3032, "std": 0.3774},
    "dataset": "sklearn-digits",
    "split_sizes": {"train": 1257, "val": 270, "test": 270},
    "test_accuracy": 0.988889,
    "activation": "relu",
    "opset": 17,
    "torch_version": "2.13.0",
    "created": "2026-01-01T00:00:00+00:00",
    "sha256": "9f2c...e1",
    "file_bytes": 104857,
    "runtime": {
        "onnxruntime_version": "1.31.1",
        "providers_requested": ["cuda", "cpu"],
        "providers_active": ["cpu"],
        "intra_op_threads": 2,
        "inter_op_threads": 1,
        "graph_optimization_level": "all",
    },
    "batching": {
        "enabled": True,
        "max_batch_size": 256,
        "max_batch_delay_ms": 2.0,
        "max_queue_images": 4096,
        "queued_images": 0,
        "batches": 1520,
        "requests": 9731,
        "images": 9731,
        "mean_batch_images": 6.4,
        "max_batch_images": 64,
        "last_batch_images": 12,
        "last_queue_delay_ms": 0.41,
    },
}


class Normalization(BaseModel):
    """Model input = ((raw - low) / (high - low) - mean) / std, with (low, high) = input_range."""

    mean: float
    std: float


class RuntimeInfo(BaseModel):
    """What was asked of ONNX Runtime and what it really does (it falls back silently)."""

    onnxruntime_version: str
    providers_requested: list[str]
    providers_active: list[str]
    intra_op_threads: int
    inter_op_threads: int
    graph_optimization_level: str


class BatchingInfo(BaseModel):
    """Dynamic batching of /predict: its settings and what it has done since start-up."""

    enabled: bool
    max_batch_size: int
    max_batch_delay_ms: float
    max_queue_images: int
    queued_images: int = Field(description="images waiting for a batch now")
    batches: int = Field(description="ONNX Runtime runs made by the batcher")
    requests: int = Field(description="requests those runs served")
    images: int
    mean_batch_images: float
    max_batch_images: int
    last_batch_images: int
    last_queue_delay_ms: float = Field(
        description="how long the last batch's oldest request waited"
    )


class ModelInfo(BaseModel):
    """The served model: identity, input contract, quality and runtime."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    name: str
    version: str
    labels: list[str]
    input_shape: list[int] = Field(description="(channels, height, width) of one image")
    input_range: list[float] = Field(description="raw value range of /predict inputs")
    normalization: Normalization
    dataset: str
    split_sizes: dict[str, int]
    test_accuracy: float = Field(description="accuracy on the held-out test split at export")
    activation: str
    opset: int
    torch_version: str
    created: str
    sha256: str = Field(description="SHA-256 of the ONNX file as loaded")
    file_bytes: int
    runtime: RuntimeInfo
    batching: BatchingInfo | None = Field(None, description="absent until the model is loaded")
