"""Schemas of /activate and /activations: they document the JSON shapes (orjson parses the body)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ARRAY = "a number or nested lists of numbers (rank 0..8); NaN and Infinity are not JSON"

ACTIVATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "leaky_relu value and grad": {
        "value": {
            "function": "leaky_relu",
            "params": {"negative_slope": 0.1},
            "x": [[-2.0, -0.5, 0.0], [0.5, 1.0, 2.0]],
            "outputs": ["value", "grad"],
        }
    },
    "gelu with an upstream gradient (VJP)": {
        "value": {
            "function": "gelu",
            "x": [-1.0, 0.0, 1.0],
            "dtype": "float64",
            "outputs": ["value", "vjp"],
            "grad_output": [1.0, 1.0, 0.5],
        }
    },
    "softmax along dim 1": {
        "value": {"function": "softmax", "params": {"dim": 1}, "x": [[1.0, 2.0, 3.0]]}
    },
}


class ActivateRequest(BaseModel):
    """The JSON body of POST /activate."""

    model_config = ConfigDict(extra="forbid")

    function: str = Field(description="a name from GET /activations (swish = silu)")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="torch's parameter names; omitted ones take torch's defaults",
    )
    x: Any = Field(description=ARRAY)
    dtype: Literal["float32", "float64"] = Field(
        "float32", description="the precision of the computation (float32 in, float32 math)"
    )
    outputs: list[Literal["value", "grad", "vjp", "weight_grad", "slopes"]] | None = Field(
        None,
        description="default: value, grad (elementwise functions only) and vjp when grad_output "
        "is given. weight_grad is prelu's, slopes rrelu's",
    )
    grad_output: Any | None = Field(
        None, description="the upstream gradient for vjp, shaped like the output; " + ARRAY
    )


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
