# mypy: disable-error-code="no-any-return"
"""The exponential linear units: elu, selu and celu, in branch-free forms (expm1 on the negative side)."""

from __future__ import annotations

import numpy as np

from service.activations.params import Param, Params
from service.activations.registry import Activation, Array, register
from service.activations.smooth import positive_mask

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def elu(x: Array, p: Params) -> Array:
    return np.maximum(x, 0) + p["alpha"] * np.expm1(np.minimum(x, 0))


def elu_grad(x: Array, p: Params) -> Array:
    positive = positive_mask(x)
    return positive + (1 - positive) * (p["alpha"] * np.exp(np.minimum(x, 0)))


def selu(x: Array, p: Params) -> Array:
    return SELU_SCALE * np.maximum(x, 0) + (SELU_ALPHA * SELU_SCALE) * np.expm1(np.minimum(x, 0))


def selu_grad(x: Array, p: Params) -> Array:
    positive = positive_mask(x)
    negative = (SELU_ALPHA * SELU_SCALE) * np.exp(np.minimum(x, 0))
    return positive * SELU_SCALE + (1 - positive) * negative


def celu(x: Array, p: Params) -> Array:
    alpha = p["alpha"]
    return np.maximum(x, 0) + alpha * np.expm1(np.minimum(x, 0) / alpha)


def celu_grad(x: Array, p: Params) -> Array:
    positive = positive_mask(x)
    return positive + (1 - positive) * np.exp(np.minimum(x, 0) / p["alpha"])


def _nonzero_alpha(value: float) -> bool:
    return value != 0


_ALPHA = Param("alpha", "float", "scale of the negative part", default=1.0)

register(
    Activation(
        name="elu",
        formula="x if x > 0 else alpha * (exp(x) - 1)",
        value=elu,
        derivative=elu_grad,
        params=(_ALPHA,),
        kinks="elu'(0) = alpha (the x <= 0 branch)",
        piecewise_linear=False,
        onnx="Elu(alpha=alpha)",
    )
)
register(
    Activation(
        name="selu",
        formula=f"scale * (x if x > 0 else alpha * (exp(x) - 1)); alpha = {SELU_ALPHA!r}, "
        f"scale = {SELU_SCALE!r} (fixed)",
        value=selu,
        derivative=selu_grad,
        kinks="selu'(0) = alpha * scale = 1.7580993408473766",
        piecewise_linear=False,
        onnx="Selu",
    )
)
register(
    Activation(
        name="celu",
        formula="max(0, x) + min(0, alpha * (exp(x / alpha) - 1))",
        value=celu,
        derivative=celu_grad,
        params=(
            Param(
                "alpha",
                "float",
                "scale of the negative part",
                default=1.0,
                rule=_nonzero_alpha,
                rule_text="be non-zero",
            ),
        ),
        kinks="celu'(0) = 1",
        piecewise_linear=False,
        onnx="Celu(alpha=alpha)",
    )
)
