"""Schemas of /activate and /activations for the OpenAPI document (the request model is the feature's)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.activations.request import ACTIVATE_EXAMPLES, ActivateRequest

__all__ = [
    "ACTIVATE_EXAMPLES",
    "ActivateRequest",
    "ActivateResponse",
    "ActivationInfo",
    "ActivationList",
]


class ActivateResponse(BaseModel):
    """The outputs asked for, each an array shaped like the output (x's shape but for glu).

    In JSON a non-finite result (an overflow, or NaN from NaN) is written as null: use the .npy
    form to get IEEE values back.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "function": "leaky_relu",
                    "params": {"negative_slope": 0.1},
                    "shape": [2, 3],
                    "dtype": "float32",
                    "value": [[-0.2, -0.05, 0.0], [0.5, 1.0, 2.0]],
                    "grad": [[0.1, 0.1, 0.1], [1.0, 1.0, 1.0]],
                }
            ]
        }
    )

    function: str
    params: dict[str, Any] = Field(description="every parameter, defaults filled in")
    shape: list[int] = Field(description="the shape of x")
    dtype: Literal["float32", "float64"]
    value: Any | None = None
    grad: Any | None = Field(None, description="the elementwise derivative f'(x)")
    vjp: Any | None = Field(None, description="grad_output times the Jacobian")
    weight_grad: Any | None = Field(None, description="prelu: the gradient for weight")
    slopes: Any | None = Field(None, description="rrelu: the slope applied to each element")


class ParamInfo(BaseModel):
    name: str
    type: str
    default: Any
    required: bool
    constraint: str | None
    doc: str


class ActivationInfo(BaseModel):
    """One function: formula, parameters, gradient conventions and the matching ONNX operator."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "relu",
                    "aliases": [],
                    "formula": "max(x, 0)",
                    "kind": "piecewise-linear",
                    "elementwise": True,
                    "params": [],
                    "kinks": "relu'(0) = 0 (also at -0.0)",
                    "outputs": ["value", "grad", "vjp"],
                    "extras": {},
                    "onnx": "Relu",
                }
            ]
        }
    )

    name: str
    aliases: list[str]
    formula: str
    kind: Literal["piecewise-linear", "smooth"]
    elementwise: bool = Field(description="false: the Jacobian is not diagonal (VJP only)")
    params: list[ParamInfo]
    kinks: str = Field(description="the gradient at points of non-differentiability")
    outputs: list[str]
    extras: dict[str, str]
    onnx: str


class ActivationList(BaseModel):
    activations: list[ActivationInfo]
    tolerance: dict[str, str] = Field(
        description="how far smooth functions may be from torch; piecewise-linear ones match "
        "bit for bit"
    )
