"""The model metadata contract: keys in the ONNX file's metadata_props, written at export, read at serving."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from service.errors import ModelLoadError

#: Bump when the meaning of a key changes; the service refuses versions it does not know.
SCHEMA_VERSION = "1"
#: Every key lives under this prefix so that our props never collide with a tool's.
PREFIX = "relu_serve."


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

    @property
    def num_classes(self) -> int:
        return len(self.labels)

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
        names = [f for f in cls.__dataclass_fields__ if f != "activation_outputs"]
        missing = [n for n in names if PREFIX + n not in props]
        if missing:
            raise ModelLoadError(f"metadata keys missing: {', '.join(PREFIX + n for n in missing)}")
        try:
            raw = {
                n: json.loads(props[PREFIX + n])
                for n in cls.__dataclass_fields__
                if PREFIX + n in props
            }
            meta = cls(
                name=str(raw["name"]),
                version=str(raw["version"]),
                labels=tuple(str(label) for label in raw["labels"]),
                input_shape=_triple(raw["input_shape"]),
                input_range=(float(raw["input_range"][0]), float(raw["input_range"][1])),
                mean=float(raw["mean"]),
                std=float(raw["std"]),
                dataset=str(raw["dataset"]),
                split_sizes={str(k): int(v) for k, v in raw["split_sizes"].items()},
                test_accuracy=float(raw["test_accuracy"]),
                activation=str(raw["activation"]),
                seed=int(raw["seed"]),
                opset=int(raw["opset"]),
                torch_version=str(raw["torch_version"]),
                created=str(raw["created"]),
                activation_outputs={
                    str(k): str(v) for k, v in raw.get("activation_outputs", {}).items()
                },
            )
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise ModelLoadError(f"metadata is malformed: {exc}") from None
        if meta.num_classes < 2:
            raise ModelLoadError("metadata lists fewer than two labels")
        if meta.std <= 0 or not meta.input_range[0] < meta.input_range[1]:
            raise ModelLoadError(
                "metadata normalisation is invalid (std <= 0 or empty input range)"
            )
        return meta


def _triple(value: object) -> tuple[int, int, int]:
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(f"input_shape must be [C, H, W], got {value!r}")
    c, h, w = (int(v) for v in value)
    return (c, h, w)
