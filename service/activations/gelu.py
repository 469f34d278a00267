# mypy: disable-error-code="no-any-return"
"""GELU, exact (erf) and tanh-approximated, with stable tails.

Exact GELU uses scipy.special.erfc (scipy is already a serving dependency): x * Phi(x) is written
0.5 * x * erfc(-x / sqrt(2)), which keeps full relative precision in the left tail where
0.5 * x * (1 + erf(x / sqrt(2))) cancels (torch's form).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from service.activations.params import Param, Params
from service.activations.registry import Activation, Array, register
from service.activations.smooth import TAIL

_INV_SQRT2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_K = math.sqrt(2 / math.pi)
_KAPPA = 0.044715


def _erfc(z: Array) -> Array:
    return special.erfc(z).astype(z.dtype, copy=False)  # scipy's float32 loop returns float32


def _tanh_inner(x: Array) -> Array:
    return _K * (x + _KAPPA * (x * x * x))


def gelu(x: Array, p: Params) -> Array:
    if p["approximate"] == "tanh":
        return 0.5 * np.maximum(x, -TAIL) * (1 + np.tanh(_tanh_inner(x)))
    # erfc underflows to exactly 0 below x = -40, so the clamp only turns -inf * 0 into 0.
    return 0.5 * np.maximum(x, -TAIL) * _erfc(x * -_INV_SQRT2)


def gelu_grad(x: Array, p: Params) -> Array:
    c = np.clip(x, -TAIL, TAIL)
    if p["approximate"] == "tanh":
        u = _tanh_inner(c)
        e = np.exp(-2 * np.abs(u))
        sech2 = 4 * e / ((1 + e) * (1 + e))
        return 0.5 * (1 + np.tanh(u)) + 0.5 * c * sech2 * (_K * (1 + 3 * _KAPPA * (c * c)))
    return 0.5 * _erfc(c * -_INV_SQRT2) + c * (_INV_SQRT_2PI * np.exp(-0.5 * (c * c)))


register(
    Activation(
        name="gelu",
        formula="none: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); "
        "tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
        value=gelu,
        derivative=gelu_grad,
        params=(
            Param(
                "approximate",
                "choice",
                "'none' for the exact erf form (torch's default), 'tanh' for the approximation",
                default="none",
                choices=("none", "tanh"),
            ),
        ),
        kinks="none (smooth); gelu'(0) = 0.5",
        piecewise_linear=False,
        onnx="Gelu(approximate=approximate) (opset 20); older opsets: Erf, Mul, Add",
    )
)
