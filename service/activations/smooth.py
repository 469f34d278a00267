# mypy: disable-error-code="no-any-return"
"""Smooth elementwise activations in numerically stable, branch-free forms (expm1, log1p, |x|).

Where torch gives NaN for a finite mathematical limit (x * 0 at x = -inf), x is clamped to a
bound beyond which the other factor is exactly 0 in float32 and float64, so the limit comes out.
"""

from __future__ import annotations

import numpy as np

from service.activations.params import Param, Params
from service.activations.registry import Activation, Array, register

#: |x| beyond which exp(-|x|) underflows to 0 in float64 (and float32): products with it are 0.
TAIL = 800.0


def positive_mask(x: Array) -> Array:
    return (x > 0).astype(x.dtype)


def sigmoid(x: Array, p: Params | None = None) -> Array:
    # 1/(1+exp(-x)) is accurate in both tails (exp is relatively exact); exp overflow gives 0.
    return 1 / (1 + np.exp(-x))


def sigmoid_grad(x: Array, p: Params | None = None) -> Array:
    # e/(1+e)^2 with e = exp(-|x|): no overflow, no cancellation (torch's y(1-y) is 0 past 17.3).
    e = np.exp(-np.abs(x))
    return e / ((1 + e) * (1 + e))


def _sech2(u: Array) -> Array:
    e = np.exp(-2 * np.abs(u))
    return 4 * e / ((1 + e) * (1 + e))


def tanh(x: Array, p: Params) -> Array:
    return np.tanh(x)


def tanh_grad(x: Array, p: Params) -> Array:
    return _sech2(x)  # torch's 1 - tanh(x)^2 cancels for |x| > 4


def softsign(x: Array, p: Params) -> Array:
    # Clamped to the finite range so that +-inf give the limits +-1 (torch: inf/inf = NaN).
    big = np.finfo(x.dtype).max
    return (c := np.clip(x, -big, big)) / (1 + np.abs(c))


def softsign_grad(x: Array, p: Params) -> Array:
    d = 1 + np.abs(x)
    return 1 / (d * d)


def tanhshrink(x: Array, p: Params) -> Array:
    return x - np.tanh(x)


def tanhshrink_grad(x: Array, p: Params) -> Array:
    t = np.tanh(x)
    return t * t


def _softplus_unit(z: Array) -> Array:
    """log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(-|z|))."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def logsigmoid(x: Array, p: Params) -> Array:
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def logsigmoid_grad(x: Array, p: Params) -> Array:
    return sigmoid(-x)


def softplus(x: Array, p: Params) -> Array:
    beta, threshold = p["beta"], p["threshold"]
    big = float(np.finfo(x.dtype).max)
    linear = (x * beta > threshold).astype(x.dtype)  # strict, as torch: == uses the log branch
    # Each side is clamped where its weight is 0, so that +-inf never meets a 0 weight.
    soft = _softplus_unit(np.minimum(x, min(threshold / beta, big)) * beta) / beta
    return linear * np.maximum(x, -big) + (1 - linear) * soft


def softplus_grad(x: Array, p: Params) -> Array:
    beta, threshold = p["beta"], p["threshold"]
    linear = (x * beta > threshold).astype(x.dtype)
    return linear + (1 - linear) * sigmoid(x * beta)


def silu(x: Array, p: Params) -> Array:
    return np.maximum(x, -TAIL) * sigmoid(x)


def silu_grad(x: Array, p: Params) -> Array:
    c = np.clip(x, -TAIL, TAIL)
    return sigmoid(c) * (1 + c * sigmoid(-c))  # s + x s (1 - s), with 1 - s = sigmoid(-x)


def _tanh_softplus(x: Array) -> tuple[Array, Array]:
    """tanh(softplus(x)) and its sech^2, via m = expm1(-2 softplus(x)) (no cancellation)."""
    m = np.expm1(-2 * _softplus_unit(x))
    two_m = 2 + m
    return -m / two_m, 4 * (1 + m) / (two_m * two_m)


def mish(x: Array, p: Params) -> Array:
    return np.maximum(x, -TAIL) * _tanh_softplus(x)[0]


def mish_grad(x: Array, p: Params) -> Array:
    c = np.clip(x, -TAIL, TAIL)
    t, sech2 = _tanh_softplus(c)
    return t + c * sigmoid(c) * sech2


register(
    Activation(
        name="silu",
        aliases=("swish",),
        formula="x * sigmoid(x)",
        value=silu,
        derivative=silu_grad,
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
        kinks="none (smooth); tanhshrink'(0) = 0",
        piecewise_linear=False,
        onnx="Tanh then Sub (no single operator)",
    )
)
