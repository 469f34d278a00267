"""Schemas of POST /explain and POST /regions, for the OpenAPI document.

The response examples are real answers of the default model (`make model`) to ZERO and to the
segment ZERO -> ONE, rounded, and shortened ("...") where a field holds hundreds of numbers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.api.schemas.predict import JSON, MULTIPART, NPY, ZERO, ModelRef
from service.classifier.geometry.feature import ExplainOptions, PlaneOptions, RegionsOptions

#: Digit "1", the second of scikit-learn's digits (raw 0..16): the far end of an example segment.
ONE: list[Any] = [
    [0, 0, 0, 12, 13, 5, 0, 0],
    [0, 0, 0, 11, 16, 9, 0, 0],
    [0, 0, 3, 15, 16, 6, 0, 0],
    [0, 7, 15, 16, 16, 2, 0, 0],
    [0, 0, 1, 16, 16, 3, 0, 0],
    [0, 0, 1, 16, 16, 6, 0, 0],
    [0, 0, 1, 16, 16, 6, 0, 0],
    [0, 0, 0, 11, 16, 10, 0, 0],
]


class LinearMap(BaseModel):
    kind: str = Field(description="region: the exact affine map; jacobian: a linearisation")
    note: str
    space: str = Field(description="the input space the weights act on (normalised input)")
    weights: list[Any] = Field(description="classes x H x W: d logits / d x")
    bias: list[float] = Field(description="logits == weights . x + bias")
    max_abs_error: float = Field(description="max |weights . x + bias - logits| at x")


class Layer(BaseModel):
    name: str
    kind: str = Field(description="relu or maxpool")
    units: int = Field(description="ReLU units, or max-pool windows")
    active: int = Field(description="ReLU: units on; max-pool: windows with a positive maximum")
    map: list[Any] | None = Field(
        None, description="with units=true: 0/1 per ReLU unit, or each window's winner (0..3)"
    )


class Pattern(BaseModel):
    id: str = Field(description="stable hash of the ReLU signs and max-pool argmaxes")
    layers: list[Layer]


class Nearest(BaseModel):
    layer: str
    kind: str
    unit: list[int] = Field(description="index in the layer (max-pool: the window)")
    rival: int | None = Field(description="max-pool: the window entry that would take over")


class Region(BaseModel):
    radius: float | None = Field(
        description="exact L2 distance from x to the region's boundary, in input space"
    )
    ties: int = Field(description="switching surfaces x sits on (radius 0 when > 0)")
    nearest: Nearest | None


EXPLAIN_EXAMPLE: dict[str, Any] = {
    "model": {"name": "relu_cnn", "version": "1.0.0"},
    "label": "0",
    "index": 0,
    "logits": [20.67, -14.63, -7.643, -11.24, -4.002, -0.747, 1.784, -8.093, -8.851, -2.778],
    "piecewise_linear": True,
    "linear_map": {
        "kind": "region",
        "note": "the exact affine map of the activation region holding x: "
        "logits == weights . x + bias on the whole region",
        "space": "normalised input 1x8x8: x = ((raw - 0) / 16 - 0.30554) / 0.376339, "
        "the float32 values the model sees, held in float64",
        "weights": [
            [
                [-0.01244, -1.355, -0.1243, 0.2851, 1.404, 0.4831, -0.4131, -0.6173],
                "... 7 more rows of class 0",
            ],
            "... 9 more classes",
        ],
        "bias": [2.047, -2.005, -0.7576, -0.5497, -0.7229, -0.7347, -0.3193, -1.04, 0.2386, 0.7606],
        "max_abs_error": 5.329e-15,
    },
    "pattern": {
        "id": "5061eed19a8018a1",
        "layers": [
            {"name": "act1", "kind": "relu", "units": 2048, "active": 915},
            {"name": "pool1", "kind": "maxpool", "units": 512, "active": 423},
            {"name": "act2", "kind": "relu", "units": 1024, "active": 185},
            {"name": "pool2", "kind": "maxpool", "units": 256, "active": 127},
            {"name": "act3", "kind": "relu", "units": 512, "active": 197},
            {"name": "act_fc", "kind": "relu", "units": 128, "active": 47},
        ],
    },
    "region": {
        "radius": 0.0001159,
        "ties": 0,
        "nearest": {"layer": "act1", "kind": "relu", "unit": [10, 2, 0], "rival": None},
    },
}


class ExplainResponse(BaseModel):
    """The local geometry of one image."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXPLAIN_EXAMPLE]})

    model: ModelRef
    label: str
    index: int
    logits: list[float] = Field(description="float64 logits of the evaluator")
    piecewise_linear: bool
    linear_map: LinearMap
    pattern: Pattern | None = Field(description="null when the model is not piecewise linear")
    region: Region | None = Field(description="null when the model is not piecewise linear")


class Piece(BaseModel):
    t0: float
    t1: float
    label: str


REGIONS_EXAMPLE: dict[str, Any] = {
    "model": {"name": "relu_cnn", "version": "1.0.0"},
    "breakpoints": [0.0008049, 0.003342, 0.005578, "... 1,911 more"],
    "activation_regions": 1915,
    "linear_pieces": 1105,
    "pieces": [
        {"t0": 0.0, "t1": 0.0033418599611472538, "label": "0"},
        {"t0": 0.0033418599611472538, "t1": 0.005578406404737944, "label": "0"},
    ],
    "decision_changes": [0.5868081591028365, 0.6942379595936249],
    "max_abs_error": 1.066e-14,
    "passes": 55,
}


class Knots(BaseModel):
    t: list[float] = Field(description="0, every linear piece's start, decision change and 1")
    logits: list[list[float]] = Field(description="the float64 logits at each t (t x classes)")


class RegionsResponse(BaseModel):
    """The exact activation regions and linear pieces along the segment."""

    model_config = ConfigDict(json_schema_extra={"examples": [REGIONS_EXAMPLE]})

    model: ModelRef
    breakpoints: list[Any] = Field(description="sorted t in (0, 1) where the pattern changes")
    activation_regions: int = Field(description="pieces of [0, 1] with one activation pattern")
    linear_pieces: int = Field(description="maximal pieces on which the logits are affine in t")
    pieces: list[Piece] = Field(description="the linear pieces, cut where the label changes")
    decision_changes: list[float] = Field(description="t where the predicted label changes")
    max_abs_error: float = Field(description="largest residual of the affine check")
    passes: int = Field(description="batched float64 passes the walk took")
    knots: Knots | None = Field(None, description="with logits=true")


class ExplainRequest(ExplainOptions):
    inputs: list[Any] = Field(description="one image (H, W) in the raw value range, like /predict")


class RegionsRequest(RegionsOptions):
    start: list[Any] = Field(description="the image at t = 0")
    end: list[Any] = Field(description="the image at t = 1")


EXPLAIN_BODY: dict[str, Any] = {
    "required": True,
    "description": "One image in any /predict form; options may be query parameters.",
    "content": {
        JSON: {
            "schema": ExplainRequest.model_json_schema(),
            "examples": {"one digit": {"value": {"inputs": ZERO}}},
        },
        MULTIPART: {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {"files": {"type": "string", "format": "binary"}},
            }
        },
        NPY: {"schema": {"type": "string", "format": "binary", "description": "one image"}},
    },
}

REGIONS_BODY: dict[str, Any] = {
    "required": True,
    "description": "The two ends of the segment, as JSON or one .npy array of two images.",
    "content": {
        JSON: {
            "schema": RegionsRequest.model_json_schema(),
            "examples": {"zero to one": {"value": {"start": ZERO, "end": ONE}}},
        },
        NPY: {"schema": {"type": "string", "format": "binary", "description": "shape (2, H, W)"}},
    },
}


class PlaneRequest(PlaneOptions):
    a: list[Any] = Field(description="the image at (u, v) = (0, 0)")
    b: list[Any] = Field(description="the image at (1, 0)")
    c: list[Any] = Field(description="the image at (0, 1)")


#: Digit "2", the third of scikit-learn's digits.
TWO: list[Any] = [
    [0, 0, 0, 4, 15, 12, 0, 0],
    [0, 0, 3, 16, 15, 14, 0, 0],
    [0, 0, 8, 13, 8, 16, 0, 0],
    [0, 0, 1, 6, 15, 11, 0, 0],
    [0, 1, 8, 13, 15, 1, 0, 0],
    [0, 9, 16, 16, 5, 0, 0, 0],
    [0, 3, 13, 16, 16, 11, 5, 0],
    [0, 0, 0, 3, 11, 16, 9, 0],
]

PLANE_BODY: dict[str, Any] = {
    "required": True,
    "description": "Three images, as JSON or one .npy array of three images.",
    "content": {
        JSON: {
            "schema": PlaneRequest.model_json_schema(),
            "examples": {"zero, one, two": {"value": {"a": ZERO, "b": ONE, "c": TWO, "grid": 64}}},
        },
        NPY: {"schema": {"type": "string", "format": "binary", "description": "shape (3, H, W)"}},
    },
}
