"""The model contract shared with model_export: metadata keys, tensor names and normalisation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from service.errors import ModelLoadError

#: Bump when the meaning of a key changes; the service refuses versions it does not know.
SCHEMA_VERSION = "1"
#: Every key lives under this prefix so that our props never collide with a tool's.
PREFIX = "relu_serve."
#: The graph's one input (N, C, H, W) float32, normalised, and its output (N, classes).
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class PatternsRef:
    """The training images' activation patterns of one layer, bit-packed beside the model: the
    reference of the out-of-distribution score (numpy .npy, uint8, np.packbits of ``> 0``)."""

    #: File name, in the model's folder.
    file: str
    sha256: str
    layer: str
    #: Distinct patterns stored (rows) and units per pattern (bits).
    patterns: int
    units: int


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the service needs to know about a model; it hard-codes none of it."""

    name: str
    version: str
    labels: tuple[str, ...]
    #: (channels, height, width) of one image; the batch axis is dynamic.
    input_shape: tuple[int, int, int]
    #: The raw value range clients send (digits: 0..16, 8-bit images: 0..255).
    input_range: tuple[float, float]
    #: Normalisation applied after scaling raw values to [0, 1]: (x01 - mean) / std.
    mean: float
    std: float
    dataset: str
    split_sizes: dict[str, int]
    test_accuracy: float
    activation: str
    seed: int
    opset: int
    torch_version: str
    created: str
    #: Activation layer name -> the ONNX tensor it outputs (for dead-unit monitoring).
    activation_outputs: dict[str, str] = field(default_factory=dict)
    #: The OOD reference patterns; None in models exported before they existed.
    ood_patterns: PatternsRef | None = None

    def __post_init__(self) -> None:
        if len(self.labels) < 2:
            raise ValueError("the model needs at least two labels")
        if self.std <= 0 or not self.input_range[0] < self.input_range[1]:
            raise ValueError("normalisation is invalid (std <= 0 or empty input range)")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def normalize(self, raw: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Raw values -> the model's input: ``standardize(to_unit(raw))``, as in training (the
        same four operations, written out: two calls less on every request)."""
        low, high = self.input_range
        x: np.ndarray[Any, np.dtype[np.float32]] = np.subtract(raw, low, dtype=np.float32)
        x /= high - low
        x -= self.mean
        x /= self.std
        return x

    def raw(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
        """The model's input -> raw values: ``normalize`` undone, in float64."""
        low, high = self.input_range
        return (x.astype(np.float64) * self.std + self.mean) * (high - low) + low

    def to_props(self) -> dict[str, str]:
        """Serialise to ONNX metadata_props: one JSON value per key."""
        props = {PREFIX + key: json.dumps(value) for key, value in asdict(self).items()}
        props[PREFIX + "schema_version"] = SCHEMA_VERSION
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> ModelMetadata:
        """Parse ONNX metadata_props; raise ModelLoadError naming what is missing or wrong."""
        version = props.get(PREFIX + "schema_version")
        if version is None:
            raise ModelLoadError(
                "the model carries no relu-serve metadata; export it with relu-export"
            )
        if version != SCHEMA_VERSION:
            raise ModelLoadError(
                f"metadata schema version {version!r} is not supported (expected {SCHEMA_VERSION!r})"
            )
        try:
            raw = {
                key.removeprefix(PREFIX): json.loads(value)
                for key, value in props.items()
                if key.startswith(PREFIX)
            }
            return _ADAPTER.validate_python(raw)
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"metadata is malformed: {exc}") from None
        except ValidationError as exc:
            raise ModelLoadError(_describe(exc)) from None


_ADAPTER = TypeAdapter(ModelMetadata)


def _describe(exc: ValidationError) -> str:
    missing = [PREFIX + str(e["loc"][0]) for e in exc.errors() if e["type"] == "missing"]
    if missing:
        return f"metadata keys missing: {', '.join(missing)}"
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"metadata is malformed: {where or 'metadata'}: {error['msg']}"


def to_unit(
    raw: np.ndarray[Any, Any], value_range: tuple[float, float]
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Raw values in ``value_range`` -> [0, 1], in float32 (a new array)."""
    low, high = value_range
    x: np.ndarray[Any, np.dtype[np.float32]] = np.subtract(raw, low, dtype=np.float32)
    # A Python float operand is cast to the array's float32 (NEP 50), as np.float32 would be.
    x /= high - low
    return x


def standardize(
    x01: np.ndarray[Any, np.dtype[np.float32]], mean: float, std: float
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """[0, 1] values -> (x - mean) / std in float32, in place: the model's input."""
    x01 -= mean
    x01 /= std
    return x01
