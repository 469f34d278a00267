# mypy: disable-error-code="no-any-return"
"""Smooth elementwise activations in numerically stable, branch-free forms (expm1, log1p, |x|).

Where torch gives NaN for a finite mathematical limit (x * 0 at x = -inf), x is clamped to a
bound beyond which the other factor is exactly 0 in float32 and float64, so the limit comes out.
float32 is computed in float64 (see numerics.py).
"""

from __future__ import annotations

import numpy as np

from service.activations import numerics as nx
from service.activations.numerics import TAIL, work
from service.activations.params import Param, Params
from service.activations.registry import Activation, Array, register

#: The series of (x - tanh x) / x^3 in x^2: 1/3, -2/15, 17/315, ... (exact rationals).
_TANHSHRINK_SERIES = (
    (1, 3), (-2, 15), (17, 315), (-62, 2835), (1382, 155925), (-21844, 6081075),
    (929569, 638512875), (-6404582, 10854718875), (443861162, 1856156927625),
)  # fmt: skip


def sigmoid(x: Array, p: Params | None = None) -> Array:
    return nx.sigmoid(x)


def sigmoid_grad(x: Array, p: Params | None = None) -> Array:
    return nx.sigmoid_grad(x)


def tanh(x: Array, p: Params) -> Array:
    if nx.wide(x):
        # numpy's float64 tanh is 1.1 ULP off at worst; long double rounds to 0.5 ULP.
        return np.tanh(x.astype(np.longdouble)).astype(np.float64)
    return np.tanh(work(x))


def tanh_grad(x: Array, p: Params) -> Array:
    # 4e / (1 + e)^2 with e = exp(-2|x|): torch's 1 - tanh(x)^2 cancels for |x| > 4.
    two = 2 * np.abs(work(x))
    parts = nx.logistic(-two, scaled=nx.wide(x))
    return 4 * parts.n / ((1 + parts.e) * (1 + parts.e)) * parts.scale


def softsign(x: Array, p: Params) -> Array:
    # Clamped to the finite range so that +-inf give the limits +-1 (torch: inf/inf = NaN).
    big = np.finfo(x.dtype).max
    c = np.clip(work(x), -big, big)
    return c / (1 + np.abs(c))


def softsign_grad(x: Array, p: Params) -> Array:
    r = 1 / (1 + np.abs(work(x)))
    return r * r  # not 1 / d^2: d^2 overflows for |x| > 1.3e154 where the result is normal


def _tanhshrink_small(x: Array) -> Array:
    """x - tanh(x) = x^3 (1/3 - 2x^2/15 + ...) for |x| <= 0.15, in long double."""
    xl = x.astype(np.longdouble)
    y = xl * xl
    acc = np.zeros_like(xl)
    for num, den in reversed(_TANHSHRINK_SERIES):
        acc = acc * y + np.longdouble(num) / np.longdouble(den)
    return acc * (xl * y)


def tanhshrink(x: Array, p: Params) -> Array:
    # x - tanh(x) cancels for small |x| (no correct digit below 1e-4 in float32, torch alike).
    if nx.wide(x):
        xl = x.astype(np.longdouble)
        direct = xl - np.tanh(xl)
        small = (np.abs(x) <= 0.15).astype(np.longdouble)
        series = _tanhshrink_small(np.clip(x, -0.15, 0.15))
        return (small * series + (1 - small) * direct).astype(np.float64)
    w = work(x)
    ws = np.clip(w, -0.05, 0.05)
    y = ws * ws
    series = ws * y * (1 / 3 + y * (-2 / 15 + y * (17 / 315 + y * (-62 / 2835))))
    small = (np.abs(w) < 0.05).astype(np.float64)
    return small * series + (1 - small) * (w - np.tanh(w))


def tanhshrink_grad(x: Array, p: Params) -> Array:
    t = np.tanh(work(x))
    return t * t


def _softplus_unit(z: Array) -> Array:
    """log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(-|z|))."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def logsigmoid(x: Array, p: Params) -> Array:
    w = work(x)
    return np.minimum(w, 0) - np.log1p(np.exp(-np.abs(w)))


def logsigmoid_grad(x: Array, p: Params) -> Array:
    return nx.sigmoid(-x)


def softplus(x: Array, p: Params) -> Array:
    beta, threshold = p["beta"], p["threshold"]
    w = work(x)
    big = float(np.finfo(x.dtype).max)
    linear = (w * beta > threshold).astype(np.float64)  # strict, as torch: == uses the log branch
    # Each side is clamped where its weight is 0, so that +-inf never meets a 0 weight.
    soft = _softplus_unit(np.minimum(w, min(threshold / beta, big)) * beta) / beta
    return linear * np.maximum(w, -big) + (1 - linear) * soft


def softplus_grad(x: Array, p: Params) -> Array:
    beta, threshold = p["beta"], p["threshold"]
    w = work(x)
    linear = (w * beta > threshold).astype(np.float64)
    return linear + (1 - linear) * nx.sigmoid(w * beta)


def silu(x: Array, p: Params) -> Array:
    w = work(x)
    s = nx.logistic(w, scaled=nx.wide(x))
    return np.maximum(w, -TAIL) * s.n / (1 + s.e) * s.scale


def silu_grad(x: Array, p: Params) -> Array:
    # s (1 + x (1 - s)) = n ((1 + x q) + e) / (1 + e)^2: below 0 (q = 1) 1 + x is exact near the
    # root of silu' (x = -1.28), so only e's rounding meets the cancellation.
    c = np.clip(work(x), -TAIL, TAIL)
    s = nx.logistic(c, scaled=nx.wide(x))
    d = 1 + s.e
    return s.n * ((1 + c * s.q) + s.e) / (d * d) * s.scale


def _mish_parts(s: nx.Logistic) -> tuple[Array, Array]:
    """tanh(softplus(x)) (numerator scaled as s.n) and den = (1 + e)^2 + q^2: 1 - 2e^2/den
    above 0, n (e + 2) / den below; neither cancels."""
    d = 1 + s.e
    den = d * d + s.q * s.q
    t = s.p * (1 - 2 * (s.e * s.e) / den) + (1 - s.p) * (s.n * (s.e + 2) / den)
    return t, den


def mish(x: Array, p: Params) -> Array:
    c = np.clip(nx.precise(x), -TAIL, TAIL)
    s = nx.logistic(c, scaled=False)
    t, _ = _mish_parts(s)
    return (np.maximum(nx.precise(x), -TAIL) * t).astype(work(x).dtype)


def mish_grad(x: Array, p: Params) -> Array:
    # tanh(sp) + x sigmoid(x) sech^2(sp), sech^2(sp) = 4 q^2 (1 + e)^2 / den^2. Below 0 this is
    # e P / den^2 with P = e^3 + 4e^2 + (6 + 4x) e + 4 (1 + x), whose constant terms are exact
    # near the root of mish' (x = -1.19): only e's rounding meets the cancellation.
    c = np.clip(nx.precise(x), -TAIL, TAIL)
    s = nx.logistic(c, scaled=False)
    t, den = _mish_parts(s)
    e = s.e
    above = t + 4 * c * (e * e) * (1 + e) / (den * den)
    poly = ((e + 4) * e + (6 + 4 * c)) * e + 4 * (1 + c)
    below = s.n * poly / (den * den)
    return (s.p * above + (1 - s.p) * below).astype(work(x).dtype)


_NO_PARAMS = np.zeros(1)


def _softplus_fused(p: Params) -> tuple[str, Array]:
    top = min(p["threshold"] / p["beta"], float(np.finfo(np.float32).max))
    return "softplus", np.array([p["beta"], p["threshold"], top])


register(
    Activation(
        name="silu",
        aliases=("swish",),
        formula="x * sigmoid(x)",
        value=silu,
        derivative=silu_grad,
        fused=lambda p: ("silu", _NO_PARAMS),
        kinks="none (smooth); silu'(0) = 0.5",
        piecewise_linear=False,
        onnx="Sigmoid then Mul (no single operator)",
    )
)
register(
    Activation(
        name="mish",
        formula="x * tanh(softplus(x))",
        value=mish,
        derivative=mish_grad,
        fused=lambda p: ("mish", _NO_PARAMS),
        kinks="none (smooth); mish'(0) = 0.6",
        piecewise_linear=False,
        onnx="Mish (opset 18)",
    )
)
register(
    Activation(
        name="sigmoid",
        formula="1 / (1 + exp(-x))",
        value=sigmoid,
        derivative=sigmoid_grad,
        fused=lambda p: ("sigmoid", _NO_PARAMS),
        kinks="none (smooth); sigmoid'(0) = 0.25",
        piecewise_linear=False,
        onnx="Sigmoid (ONNX Runtime's float32 kernel is approximate: 0 for x <= -18)",
    )
)
register(
    Activation(
        name="tanh",
        formula="tanh(x)",
        value=tanh,
        derivative=tanh_grad,
        fused=lambda p: ("tanh", _NO_PARAMS),
        kinks="none (smooth); tanh'(0) = 1",
        piecewise_linear=False,
        onnx="Tanh",
    )
)
register(
    Activation(
        name="softplus",
        formula="x if beta * x > threshold else log(1 + exp(beta * x)) / beta",
        value=softplus,
        derivative=softplus_grad,
        fused=_softplus_fused,
        params=(
            Param(
                "beta",
                "float",
                "sharpness",
                default=1.0,
                rule=lambda v: v > 0,
                rule_text="be > 0",
            ),
            Param("threshold", "float", "beta * x above this is treated as linear", default=20.0),
        ),
        kinks="at beta * x == threshold the log branch is used (the comparison is strict)",
        piecewise_linear=False,
        onnx="Softplus (beta = 1 and no threshold only)",
    )
)
register(
    Activation(
        name="softsign",
        formula="x / (1 + |x|)",
        value=softsign,
        derivative=softsign_grad,
        fused=lambda p: ("softsign", _NO_PARAMS),
        kinks="none (smooth); softsign'(0) = 1",
        piecewise_linear=False,
        onnx="Softsign",
    )
)
register(
    Activation(
        name="logsigmoid",
        formula="log(sigmoid(x)) = -softplus(-x)",
        value=logsigmoid,
        derivative=logsigmoid_grad,
        fused=lambda p: ("logsigmoid", _NO_PARAMS),
        kinks="none (smooth); logsigmoid'(0) = 0.5",
        piecewise_linear=False,
        onnx="Sigmoid then Log (no single operator; loses the left tail)",
    )
)
register(
    Activation(
        name="tanhshrink",
        formula="x - tanh(x)",
        value=tanhshrink,
        derivative=tanhshrink_grad,
        fused=lambda p: ("tanhshrink", _NO_PARAMS),
        kinks="none (smooth); tanhshrink'(0) = 0",
        piecewise_linear=False,
        onnx="Tanh then Sub (no single operator)",
    )
)
