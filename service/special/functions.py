# mypy: disable-error-code="no-any-return"
"""erf and the logistic sigmoid in float64, for the geometry's smooth ops (graphs with Erf or
Sigmoid nodes) without SciPy."""

from __future__ import annotations

import math

import numpy as np

from service.special.erfcx import Array, erfcx

#: 2/sqrt(pi) (-1)^n / (n! (2n + 1)), n = 0..12: erf(x) = x times their polynomial in x^2;
#: below |x| = 0.5 the first term left out is < 6e-18 of the sum.
_SERIES = tuple(
    2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(13)
)
#: erf(6) is 1 in float64 (1 - 2e-17): no need to go further out.
_ONE_FROM = 6.0


def erf(x: Array) -> Array:
    """erf(x) to a few ULP: the Maclaurin series for |x| < 0.5, 1 - erfcx(|x|) exp(-x^2)
    beyond (no cancellation there: erfc(0.5) < 0.48), odd."""
    a = np.abs(x)
    small = a < 0.5
    z = np.where(small, a, 0.0)
    t = z * z
    acc = np.full_like(z, _SERIES[-1])
    for c in reversed(_SERIES[:-1]):
        acc *= t
        acc += c
    big = np.where(small, 0.5, np.minimum(a, _ONE_FROM))
    far = 1 - erfcx(big) * np.exp(-(big * big))
    return np.copysign(np.where(small, z * acc, far), x)


def expit(x: Array) -> Array:
    """1 / (1 + exp(-x)), from e = exp(-|x|) on both sides (no overflow, no false 0 or 1)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))
