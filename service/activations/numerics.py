# mypy: disable-error-code="no-any-return"
"""Shared numerics of the smooth activations: the float64 work dtype, exp(-|t|) scaled past
float64's normal range, and exact products (Dekker's two-product) for the float64 tails.

float32 inputs are computed in float64 and rounded once at the end (evaluate casts the result),
which makes every float32 result correct to about 0.5 ULP. float64 inputs use forms whose every
rounding is relative (no cancellation), with the few exact corrections below where an argument's
own rounding would be amplified (exp of a rounded x^2, x/alpha or x - max).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.activations.registry import Array

#: |x| beyond which exp(-|x|) underflows to 0 in float64 (and float32): products with it are 0.
TAIL = 800.0

#: Below t = -SCALE_FROM the factor exp(t) is computed as 2^-64 exp(t + SHIFT) SHIFT_CORRECTION,
#: so that x * exp(t) keeps full precision where exp(t) alone would be subnormal: SHIFT is 64 ln 2
#: rounded to 16 bits (t + SHIFT is exact in t's binade), SHIFT_CORRECTION = exp(64 ln 2 - SHIFT).
SCALE_FROM = 640.0
SHIFT = 44.361328125
SHIFT_CORRECTION = 1.000091435016426
_SPLIT = 134217729.0  # 2^27 + 1: Veltkamp's splitter for float64


def work(x: Array) -> Array:
    """x in float64: float32 math is done in float64 and rounded once."""
    return x.astype(np.float64, copy=False)


def precise(x: Array) -> Array:
    """x in the dtype of the long formulas: float64 for float32, long double for float64 (80-bit on
    x86-64: 11 more bits and a range to 1e-4951, so no scaling is needed)."""
    return x.astype(np.longdouble if x.dtype == np.float64 else np.float64, copy=False)


def wide(x: Array) -> bool:
    """True when x was float64 (the exact corrections matter only there)."""
    return bool(x.dtype == np.float64)


def positive_mask(x: Array) -> Array:
    return (x > 0).astype(np.float64)


def two_prod(a: Array, b: Array) -> tuple[Array, Array]:
    """a * b = hi + lo exactly (Dekker), for |a|, |b| < 1e150."""
    hi = a * b
    a1 = _SPLIT * a
    a_hi = a1 - (a1 - a)
    b1 = _SPLIT * b
    b_hi = b1 - (b1 - b)
    a_lo, b_lo = a - a_hi, b - b_hi
    lo = ((a_hi * b_hi - hi) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return hi, lo


def two_diff(a: Array, b: Array) -> tuple[Array, Array]:
    """a - b = hi + lo exactly (Knuth's two-sum)."""
    hi = a - b
    bb = hi - a
    return hi, (a - (hi - bb)) + (-b - bb)


@dataclass(frozen=True)
class Logistic:
    """The parts of 1/(1 + exp(-t)) for every t without overflow or cancellation.

    e = exp(-|t|); p = 1 where t >= 0; n = exp(min(t, 0)) (1 where t >= 0) times 2^64 where t is
    below -SCALE_FROM, with scale = 2^-64 there (1 elsewhere): results that carry the factor n are
    multiplied by scale last. q = e where t >= 0, 1 below.
    So sigmoid(t) = n / (1 + e) * scale and sigmoid(-t) = q / (1 + e).
    """

    p: Array
    e: Array
    n: Array
    q: Array
    scale: Array | float


def logistic(t: Array, lo: Array | None = None, *, scaled: bool = True) -> Logistic:
    """The parts at t (+ lo, a low-order correction of t, when given)."""
    p = (t >= 0).astype(t.dtype)
    a = -np.abs(t)
    e = np.exp(a)
    if lo is not None:
        e *= 1 - (2 * p - 1) * lo  # exp(-|t + lo|) = exp(-|t|) (1 -+ lo)
    if not scaled:
        n = p + (1 - p) * e
        return Logistic(p=p, e=e, n=n, q=p * e + (1 - p), scale=1.0)
    far = (t < -SCALE_FROM).astype(t.dtype)
    big = np.exp(a + SHIFT * far) * (1 + (SHIFT_CORRECTION - 1) * far)
    if lo is not None:
        big *= 1 + (1 - p) * lo
    n = p + (1 - p) * big
    return Logistic(p=p, e=e, n=n, q=p * e + (1 - p), scale=np.exp2(-64.0 * far))


def sigmoid(x: Array) -> Array:
    """1 / (1 + exp(-x)) in the work dtype: e / (1 + e) below 0, so that it underflows only
    where the result does."""
    parts = logistic(work(x), scaled=False)
    d = 1 + parts.e
    r = parts.n / d
    if wide(x):  # 1 + e rounded costs up to 1 ULP: correct by its exact remainder
        r -= r * (((1 - d) + parts.e) / d)
    return r


def sigmoid_grad(x: Array, *, extended: bool = False) -> Array:
    """e / (1 + e)^2 with e = exp(-|x|): no overflow, no cancellation. In float64 its roundings
    reach 3.2 ULP; ``extended`` computes float64 in long double, for products with more factors
    (glu's VJP), which would otherwise pass 4 ULP."""
    e = np.exp(-np.abs(precise(x) if extended else work(x)))
    return e / ((1 + e) * (1 + e))
