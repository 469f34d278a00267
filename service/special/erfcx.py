# mypy: disable-error-code="no-any-return"
"""erfcx(z) = exp(z^2) erfc(z) for z >= 0 in float64, to about 1 ULP: piecewise polynomials on
[0, 8] (erfcx_table.py), the asymptotic series beyond (its 22 terms are exact to 1e-19 there).

scipy.special.erfcx is 4-8 ULP off (and erfc 9.5-503 ULP), which exact GELU's left tail turns
into as many ULP of the result; this one keeps GELU within 4 ULP.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from service.special.erfcx_table import COEFFICIENTS, WIDTH

Array = npt.NDArray[Any]

#: Column j of the table (the coefficient of s^(15 - j) in every piece), contiguous for np.take.
_COLUMNS = tuple(np.ascontiguousarray(column) for column in np.array(COEFFICIENTS).T)
_PIECES = len(COEFFICIENTS)
_ASYMPTOTIC_FROM = _PIECES * WIDTH
#: (-1)^n (2n - 1)!! for n = 0..21: z sqrt(pi) erfcx(z) = sum of them times (1 / (2 z^2))^n.
_SERIES = tuple(float((-1) ** n * math.prod(range(1, 2 * n, 2))) for n in range(22))
_INV_SQRT_PI = 1 / math.sqrt(math.pi)


def _table(z: Array) -> Array:
    k = np.fmin(z * (1 / WIDTH), _PIECES - 1).astype(np.intp)  # fmin: NaN takes the last piece
    s = (4 / (2 * WIDTH)) * z - (2 * k + 1)  # 4 (z - centre) in [-1, 1] for width 0.5
    acc = np.take(_COLUMNS[0], k).astype(z.dtype)
    for column in _COLUMNS[1:]:
        acc *= s
        acc += np.take(column, k)
    return acc


def _asymptotic(z: Array) -> Array:
    w = 1 / (2 * (z * z))
    acc = np.full_like(z, _SERIES[-1])
    for c in reversed(_SERIES[:-1]):
        acc *= w
        acc += c
    return acc * (_INV_SQRT_PI / z)


def erfcx(z: Array) -> Array:
    """erfcx(z) for finite z >= 0 (float64 or long double)."""
    far = (z >= _ASYMPTOTIC_FROM).astype(z.dtype)
    near = _table(np.minimum(z, _ASYMPTOTIC_FROM))
    return (1 - far) * near + far * _asymptotic(np.maximum(z, _ASYMPTOTIC_FROM))
