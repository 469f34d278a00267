# mypy: disable-error-code="no-any-return"
"""GELU, exact (erf) and tanh-approximated, with both tails exact to a few ULP.

Exact: x Phi(x) with Phi(x) = 0.5 erfc(-x/sqrt 2), and for x < 0
erfc(|x|/sqrt 2) = exp(-x^2/2) erfcx(|x|/sqrt 2): erfcx (erfcx.py) is well conditioned, and x^2 is
exact (float32 inputs squared in float64; float64 inputs split by Dekker's two-product), so the
left tail keeps full relative precision where torch's 0.5 x (1 + erf) cancels.
tanh: 1 + tanh(u) = 2 sigmoid(2u) = 2 e / (1 + e), e = exp(2u), below 0 (no cancellation); for
float64 u = sqrt(2/pi) (x + 0.044715 x^3) is carried in double-double, since exp amplifies the
rounding of 2u (|2u| up to 745) into hundreds of ULP.
"""

from __future__ import annotations

import math

import numpy as np

from service.activations import numerics as nx
from service.activations.numerics import TAIL, work
from service.activations.params import Param, Params
from service.activations.registry import Activation, Array, register
from service.special import erfcx

_INV_SQRT2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
#: sqrt(2/pi) and 0.044715 as double-doubles (hi, lo): hi + lo is exact to ~1e-32.
_K = (0.7978845608028654, -4.9846544045555e-17)
_KAPPA = (0.044715, 2.1960211427086e-18)
#: Beyond |x| = 40 exact GELU is x or 0 in float64 (and float32); inner terms are clamped there.
_EDGE = 40.0


def _phi_parts(x: Array) -> tuple[Array, Array, Array]:
    """c (x clamped to +-40, in the precise dtype), Phi(c) and exp(-c^2/2) (c^2 is exact for
    float32 in float64, within 2^-64 for float64 in long double)."""
    c = np.clip(nx.precise(x), -_EDGE, _EDGE)
    g = np.exp(-0.5 * (c * c))
    # erfcx in float64 (within 2 ULP; long double would cost 10x): well conditioned in its z.
    z = np.abs(np.clip(work(x), -_EDGE, _EDGE)) * _INV_SQRT2
    tail = 0.5 * g * erfcx(z).astype(c.dtype)  # 0.5 erfc(|c|/sqrt 2)
    p = (c >= 0).astype(c.dtype)
    return c, p + (1 - 2 * p) * tail, g


def _tanh_arg(c: Array, wide: bool) -> tuple[Array, Array | None]:
    """2u = 2 sqrt(2/pi) (c + 0.044715 c^3) as hi (+ lo for float64)."""
    if not wide:
        return 2 * _K[0] * (c + _KAPPA[0] * (c * c * c)), None
    c2, c2_lo = nx.two_prod(c, c)
    t, t_lo = nx.two_prod(np.full_like(c, _KAPPA[0]), c2)
    t_lo += _KAPPA[0] * c2_lo + _KAPPA[1] * c2
    one = 1 + t
    one_lo = ((1 - one) + t) + t_lo  # 1 + t >= 1 > t: the fast two-sum is exact
    m, m_lo = nx.two_prod(c, one)
    m_lo += c * one_lo
    u, u_lo = nx.two_prod(np.full_like(c, _K[0]), m)
    u_lo += _K[0] * m_lo + _K[1] * m
    return 2 * u, 2 * u_lo


def _tanh_parts(x: Array) -> tuple[Array, nx.Logistic]:
    c = np.clip(work(x), -TAIL, TAIL)
    two_u, lo = _tanh_arg(c, nx.wide(x))
    if lo is not None:  # float64: the double-double 2u, then long double from here on
        c, two_u = nx.precise(c), nx.precise(two_u) + lo.astype(np.longdouble)
    return c, nx.logistic(two_u, scaled=False)


def gelu(x: Array, p: Params) -> Array:
    w = np.maximum(nx.precise(x), -TAIL)  # turns -inf * 0 into the limit 0
    if p["approximate"] == "tanh":
        _, s = _tanh_parts(x)
        return (w * s.n / (1 + s.e)).astype(work(x).dtype)
    _, phi, _ = _phi_parts(x)
    return (w * phi).astype(work(x).dtype)


def gelu_grad(x: Array, p: Params) -> Array:
    if p["approximate"] == "tanh":
        c, s = _tanh_parts(x)
        d = 1 + s.e
        slope = 2 * _K[0] * c * (1 + 3 * _KAPPA[0] * (c * c))
        out = s.n / d * (1 + slope * s.q / d)
    else:
        c, phi, g = _phi_parts(x)
        out = phi + c * (_INV_SQRT_2PI * g)
    return out.astype(work(x).dtype)


register(
    Activation(
        name="gelu",
        formula="none: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); "
        "tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
        value=gelu,
        derivative=gelu_grad,
        fused=lambda p: ("gelu_tanh" if p["approximate"] == "tanh" else "gelu", np.zeros(1)),
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
