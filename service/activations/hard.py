# mypy: disable-error-code="no-any-return"
"""Hard and shrink activations: hardsigmoid, hardswish, softshrink, hardshrink, threshold.

Piecewise-linear and bit-identical to torch, written branch-free like service/activations/piecewise.py.
"""

from __future__ import annotations

import numpy as np

from service.activations.params import Param, Params
from service.activations.piecewise import LAMBD_RULE, float_param, mask
from service.activations.registry import Activation, Array, register


def hardsigmoid(x: Array, p: Params) -> Array:
    return np.clip(x + 3, 0, 6) / 6  # divide as torch does: * (1/6) differs in 25 % of values


def hardsigmoid_grad(x: Array, p: Params) -> Array:
    # torch multiplies grad_output by 1/6 rounded to x's dtype (float64: see the README).
    return mask((x > -3) & (x < 3), x) * (1 / 6)


def hardswish(x: Array, p: Params) -> Array:
    # x is clamped at -4 so that -inf gives the limit 0 (torch: -inf * 0 = NaN).
    return np.maximum(x, -4) * np.clip(x + 3, 0, 6) / 6


def hardswish_grad(x: Array, p: Params) -> Array:
    middle = mask((x > -3) & (x < 3), x)
    return middle * (np.clip(x, -3, 3) / 3 + 0.5) + mask(x >= 3, x)


def softshrink(x: Array, p: Params) -> Array:
    lambd = p["lambd"]
    return np.maximum(x - lambd, 0) + np.minimum(x + lambd, 0)


def _outside(x: Array, p: Params) -> Array:
    return mask((x < -p["lambd"]) | (x > p["lambd"]), x)


def hardshrink(x: Array, p: Params) -> Array:
    return x * _outside(x, p)


def threshold(x: Array, p: Params) -> Array:
    above = mask(x > p["threshold"], x)
    return above * np.maximum(x, p["threshold"]) + (1 - above) * p["value"]


def threshold_grad(x: Array, p: Params) -> Array:
    return mask(x > p["threshold"], x)


register(
    Activation(
        name="hardsigmoid",
        formula="min(max(x + 3, 0), 6) / 6",
        value=hardsigmoid,
        derivative=hardsigmoid_grad,
        kinks="hardsigmoid'(-3) = hardsigmoid'(3) = 0; 1/6 in between",
        piecewise_linear=True,
        onnx="HardSigmoid(alpha=1/6, beta=0.5) (ONNX's default alpha 0.2 differs)",
    )
)
register(
    Activation(
        name="hardswish",
        formula="x * min(max(x + 3, 0), 6) / 6",
        value=hardswish,
        derivative=hardswish_grad,
        kinks="hardswish'(-3) = 0, hardswish'(3) = 1; x/3 + 0.5 in between",
        piecewise_linear=True,
        onnx="HardSwish",
    )
)
register(
    Activation(
        name="softshrink",
        formula="x - lambd if x > lambd; x + lambd if x < -lambd; else 0",
        value=softshrink,
        derivative=_outside,
        params=(float_param("lambd", 0.5, "half-width of the zero band", **LAMBD_RULE),),
        kinks="softshrink'(-lambd) = softshrink'(lambd) = 0",
        piecewise_linear=True,
        onnx="Shrink(lambd=lambd, bias=lambd) (ONNX Runtime maps NaN to 0)",
    )
)
register(
    Activation(
        name="hardshrink",
        formula="0 if -lambd <= x <= lambd else x",
        value=hardshrink,
        derivative=_outside,
        params=(float_param("lambd", 0.5, "half-width of the zero band", **LAMBD_RULE),),
        kinks="hardshrink'(-lambd) = hardshrink'(lambd) = 0",
        piecewise_linear=True,
        onnx="Shrink(lambd=lambd, bias=0) (ONNX Runtime maps NaN to 0)",
    )
)
register(
    Activation(
        name="threshold",
        formula="x if x > threshold else value",
        value=threshold,
        derivative=threshold_grad,
        params=(
            Param("threshold", "float", "inputs <= threshold are replaced", required=True),
            Param("value", "float", "the replacement", required=True),
        ),
        kinks="threshold(threshold) = value, with gradient 0",
        piecewise_linear=True,
        onnx="ThresholdedRelu(alpha=threshold) when value = 0; otherwise none",
    )
)
