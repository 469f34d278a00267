"""The exact reference for the smooth activations: mpmath at 50 digits, value and derivative.

Each reference takes an mpf x (a float32 or float64 value, exactly) and returns (f(x), f'(x))
computed in forms without cancellation at 50 significant digits (tanhshrink raises the precision
where x - tanh(x) cancels), so both are exact to far below a float64 ULP. The constants are the
ones the functions are defined with (SELU's long decimals, GELU's 0.044715), the parameters the
float64 values a user sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath as mp
from mpmath import mpf

mp.mp.dps = 50

Pair = tuple[Any, Any]
Reference = Callable[[Any], Pair]

SELU_ALPHA = mpf("1.6732632423543772848170429916717")
SELU_SCALE = mpf("1.0507009873554804934193349852946")
KAPPA = mpf("0.044715")


def _sigmoid(x: Any) -> Any:
    return 1 / (1 + mp.exp(-x))


def _dsigmoid(x: Any) -> Any:
    e = mp.exp(-abs(x))
    return e / (1 + e) ** 2


def _elu(alpha: float) -> Reference:
    a = mpf(alpha)

    def ref(x: Any) -> Pair:
        if x > 0:
            return x, mpf(1)
        return a * mp.expm1(x), a * mp.exp(x)

    return ref


def _selu(x: Any) -> Pair:
    if x > 0:
        return SELU_SCALE * x, SELU_SCALE
    return SELU_SCALE * SELU_ALPHA * mp.expm1(x), SELU_SCALE * SELU_ALPHA * mp.exp(x)


def _celu(alpha: float) -> Reference:
    a = mpf(alpha)

    def ref(x: Any) -> Pair:
        if x > 0:
            return x, mpf(1)
        return a * mp.expm1(x / a), mp.exp(x / a)

    return ref


def _gelu(x: Any) -> Pair:
    if abs(x) > 1e20:  # mpmath's erfc fails beyond 1e154; its asymptotic form is exact here
        density = mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)
        tail = density / abs(x)
        return (x, mpf(1)) if x > 0 else (x * tail, tail + x * density)
    phi = mp.erfc(-x / mp.sqrt(2)) / 2
    return x * phi, phi + x * mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def _gelu_tanh(x: Any) -> Pair:
    k = mp.sqrt(2 / mp.pi)
    u = k * (x + KAPPA * x**3)
    e = mp.exp(-2 * abs(u))
    one_plus_t = 2 / (1 + e) if u >= 0 else 2 * e / (1 + e)  # 1 + tanh(u), no cancellation
    sech2 = 4 * e / (1 + e) ** 2
    return x * one_plus_t / 2, one_plus_t / 2 + x * sech2 * k * (1 + 3 * KAPPA * x * x) / 2


def _silu(x: Any) -> Pair:
    s, sm = _sigmoid(x), _sigmoid(-x)
    return x * s, s * (1 + x * sm)


def _mish(x: Any) -> Pair:
    sp = mp.log1p(mp.exp(x))
    t = mp.tanh(sp)
    return x * t, t + x * _sigmoid(x) * mp.sech(sp) ** 2


def _softplus(x: Any) -> Pair:
    # torch's definition with its default threshold: x itself where beta * x > 20.
    if x > 20:
        return x, mpf(1)
    return mp.log1p(mp.exp(x)), _sigmoid(x)


def _tanhshrink(x: Any) -> Pair:
    if x == 0:
        return mpf(0), mpf(0)
    # x - tanh(x) ~ x^3/3 loses 2*log10(1/|x|) digits: carry them.
    extra = max(0, int(-2 * mp.log10(abs(x)))) + 10
    with mp.workdps(mp.mp.dps + extra):
        value = x - mp.tanh(x)
    return +value, mp.tanh(x) ** 2


#: (function, params) label -> (registry name, params, reference).
ELEMENTWISE: dict[str, tuple[str, dict[str, Any], Reference]] = {
    "elu": ("elu", {}, _elu(1.0)),
    "selu": ("selu", {}, _selu),
    "celu": ("celu", {}, _celu(1.0)),
    "celu(alpha=0.3)": ("celu", {"alpha": 0.3}, _celu(0.3)),
    "gelu": ("gelu", {}, _gelu),
    "gelu(tanh)": ("gelu", {"approximate": "tanh"}, _gelu_tanh),
    "silu": ("silu", {}, _silu),
    "mish": ("mish", {}, _mish),
    "sigmoid": ("sigmoid", {}, lambda x: (_sigmoid(x), _dsigmoid(x))),
    "tanh": ("tanh", {}, lambda x: (mp.tanh(x), mp.sech(x) ** 2)),
    "softplus": ("softplus", {}, _softplus),
    "softsign": ("softsign", {}, lambda x: (x / (1 + abs(x)), 1 / (1 + abs(x)) ** 2)),
    "logsigmoid": ("logsigmoid", {}, lambda x: (-mp.log1p(mp.exp(-x)), _sigmoid(-x))),
    "tanhshrink": ("tanhshrink", {}, _tanhshrink),
}

#: Roots of f' (where f' is computed as a difference of comparable terms), found at import.
DERIVATIVE_ROOTS: dict[str, float] = {
    label: float(mp.findroot(lambda t, r=ELEMENTWISE[label][2]: r(t)[1], guess))
    for label, guess in (("gelu", -0.75), ("gelu(tanh)", -0.75), ("silu", -1.28), ("mish", -1.19))
}


def softmax_rows(x: list[Any], g: list[Any]) -> tuple[list[Any], list[Any]]:
    """softmax of one row and its VJP y * (g - sum(g y))."""
    m = max(x)
    e = [mp.exp(v - m) for v in x]
    s = mp.fsum(e)
    y = [v / s for v in e]
    gy = mp.fsum(a * b for a, b in zip(g, y, strict=True))
    return y, [yi * (gi - gy) for yi, gi in zip(y, g, strict=True)]


def log_softmax_rows(x: list[Any], g: list[Any]) -> tuple[list[Any], list[Any]]:
    """log_softmax of one row and its VJP g - exp(y) sum(g)."""
    m = max(x)
    # log(1 + rest) with log1p: the sum is 1 + (up to 1e-300) and log of it would cancel.
    log_s = mp.log1p(mp.fsum(mp.exp(v - m) for v in x if v != m) + (x.count(m) - 1))
    y = [v - m - log_s for v in x]
    sg = mp.fsum(g)
    return y, [gi - mp.exp(yi) * sg for yi, gi in zip(y, g, strict=True)]


def softmax_scales(y: list[Any], g: list[Any]) -> list[Any]:
    """The size of the terms the softmax VJP subtracts: y_i (|g_i| + sum |g y|)."""
    gy = mp.fsum(abs(a * b) for a, b in zip(g, y, strict=True))
    return [abs(yi) * (abs(gi) + gy) for yi, gi in zip(y, g, strict=True)]


def log_softmax_scales(y: list[Any], g: list[Any]) -> list[Any]:
    """The size of the terms the log_softmax VJP subtracts: |g_i| + exp(y_i) sum |g|."""
    sg = mp.fsum(abs(v) for v in g)
    return [abs(gi) + mp.exp(yi) * sg for yi, gi in zip(y, g, strict=True)]


def glu_pair(a: Any, b: Any, g: Any) -> tuple[Any, Any, Any]:
    """glu(a, b) = a sigmoid(b) and its VJP (g sigmoid(b), g a sigmoid'(b))."""
    return a * _sigmoid(b), g * _sigmoid(b), g * a * _dsigmoid(b)
