# mypy: disable-error-code="no-any-return"
"""GELU, exact (erf) and tanh-approximated, with stable tails.

x * Phi(x) is written 0.5 * x * erfc(-x / sqrt(2)), which keeps full relative precision in the
left tail where torch's 0.5 * x * (1 + erf(x / sqrt(2))) cancels. numpy has no erfc:
- float64 uses scipy.special.erfc (scipy is already a serving dependency; accurate to rounding,
  ~15 ms per million values);
- float32 uses a branch-free Chebyshev fit (Numerical Recipes' erfcc, relative error < 1.2e-7
  everywhere, far inside the float32 contract of 1e-5) in ~3 ms per million.
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


#: Numerical Recipes' erfcc coefficients, innermost first (the last one is the constant term).
_ERFCC = (
    0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807,
    -0.18628806, 0.09678418, 0.37409196, 1.00002368, -1.26551223,
)  # fmt: skip


def _erfc32(z: Array) -> Array:
    """erfc(z) = t * exp(-z^2 + P(t)), t = 1 / (1 + |z|/2), for z >= 0; 2 - erfc(-z) below."""
    a = np.abs(z)
    t = 1 / (1 + 0.5 * a)
    p = np.asarray(t * _ERFCC[0])  # an array even for 0-d input, so that out= works
    for c in _ERFCC[1:-1]:  # Horner's rule in place: no temporaries
        p += c
        p *= t
    p += _ERFCC[-1]
    p -= a * a
    np.exp(p, out=p)
    p *= t
    negative = (z < 0).astype(z.dtype)
    return p + negative * (2 - 2 * p)  # a 0/1 blend: 2 - erfc(|z|) where z < 0


def _erfc(z: Array) -> Array:
    if z.dtype == np.float32:
        return _erfc32(z)
    return special.erfc(z)


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
