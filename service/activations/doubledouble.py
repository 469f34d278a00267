# mypy: disable-error-code="misc, no-any-return, untyped-decorator, call-arg, var-annotated, assignment"
"""Double-double arithmetic for the compiled float64 kernels (numba): error-free sums and
products (two-sum, fma two-product), exp of a double-double argument to ~1e-19 relative, and
erfcx in float64 (the table of erfcx.py). Each helper returns (hi, lo) with hi + lo the result.

A float64 result rounded once from a double-double is within ~0.5 ULP; this replaces the long
double (80-bit, scalar x87, 30-48x slower than torch) that the numpy float64 kernels use. The
kernels are compiled without fastmath: reassociation would undo the error-free transforms.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from service.special.erfcx_table import COEFFICIENTS, WIDTH

try:
    import numba
    from llvmlite import ir
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - the numpy kernels serve without numba
    numba = None

#: ln 2 = LN2_1 + LN2_2 + LN2_3: LN2_1 has 32 bits, so k * LN2_1 is exact for |k| < 2^21.
_LN2_1, _LN2_2, _LN2_3 = 0.6931471806019545, -4.2009150726810846e-11, -1.3124698417785255e-27
_INV_LN2 = 1.4426950408889634
_MAGIC = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer
#: 1/n! for n = 16 down to 4: expm1(r) - r - r^2/2 - r^3/6 = r^4 (1/4! + r/5! + ...).
_TAYLOR = tuple(1 / math.factorial(n) for n in range(16, 3, -1))
_TABLE = np.array(COEFFICIENTS)
_PIECES = len(COEFFICIENTS)
_ASYMPTOTIC_FROM = _PIECES * WIDTH
_SERIES = tuple(float((-1) ** n * math.prod(range(1, 2 * n, 2))) for n in range(22))
_INV_SQRT_PI = 1 / math.sqrt(math.pi)
#: 1/(2n+1) for n = 17 down to 1: 2 atanh(s) = 2s + 2s^3 (1/3 + s^2/5 + ...), s <= 1/3; in
#: two tuples, which LLVM unrolls (one of 17 it leaves a loop, and the kernel unvectorised).
_ATANH_HIGH = tuple(1 / (2 * n + 1) for n in range(17, 8, -1))
_ATANH_LOW = tuple(1 / (2 * n + 1) for n in range(8, 0, -1))

if numba is not None:
    inline = numba.njit(inline="always", error_model="numpy")

    @intrinsic
    def fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.fma(args[0], args[1], args[2])

        return numba.float64(numba.float64, numba.float64, numba.float64), codegen

    @intrinsic
    def _from_bits(typingctx: Any, bits: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], ir.DoubleType())

        return numba.float64(numba.int64), codegen

    @inline
    def two_sum(a: float, b: float) -> tuple[float, float]:
        s = a + b
        bb = s - a
        return s, (a - (s - bb)) + (b - bb)

    @inline
    def fast_two_sum(a: float, b: float) -> tuple[float, float]:
        """a + b exactly when |a| >= |b| (or a == 0)."""
        s = a + b
        return s, b - (s - a)

    @inline
    def two_prod(a: float, b: float) -> tuple[float, float]:
        p = a * b
        return p, fma(a, b, -p)

    @inline
    def add(ah: float, al: float, bh: float, bl: float) -> tuple[float, float]:
        s, e = two_sum(ah, bh)
        return fast_two_sum(s, e + (al + bl))

    @inline
    def mul(ah: float, al: float, bh: float, bl: float) -> tuple[float, float]:
        p, e = two_prod(ah, bh)
        return fast_two_sum(p, e + (ah * bl + al * bh))

    @inline
    def div(ah: float, al: float, bh: float, bl: float) -> tuple[float, float]:
        q = ah / bh
        p, e = two_prod(q, bh)
        return fast_two_sum(q, ((((ah - p) - e) + al) - q * bl) / bh)

    @inline
    def pow2(k: Any) -> float:
        """2^k for -2000 < k < 1000 (in two factors below 2^-1000: a subnormal result rounds
        once, from the product)."""
        k1 = max(k, -1000)
        return _from_bits((k1 + 1023) << 52) * _from_bits((k - k1 + 1023) << 52)

    @inline
    def exp_reduced(ah: float, al: float) -> tuple[Any, float, float]:
        """exp(ah + al) = 2^k (1 + sh + sl) for -1000 < ah <= 710, |al| <= ulp(ah); sh + sl is
        expm1(r), |r| <= ln2/2, to ~1e-19 relative."""
        k = (ah * _INV_LN2 + _MAGIC) - _MAGIC
        r1 = ah - k * _LN2_1  # exact: k * LN2_1 has at most 43 bits and is close to ah
        ph, pl = two_prod(k, _LN2_2)
        rh, rl = two_sum(r1, -ph)
        rh, rl = fast_two_sum(rh, rl + ((al - pl) - k * _LN2_3))
        q = 0.0
        for c in _TAYLOR:
            q = q * rh + c
        sq, sq_lo = two_prod(rh, rh)
        cube, cube_lo = two_prod(rh, sq)
        c3 = cube * (1 / 6)  # r^3 / 6 as c3 + c3_lo
        c3_lo = (fma(-c3, 6.0, cube) + (cube_lo + rh * sq_lo)) * (1 / 6)
        sh, sl = two_sum(rh, 0.5 * sq)  # r + r^2/2 exactly, then the smaller terms
        sh, sl = add(sh, sl, c3, c3_lo + 0.5 * sq_lo + (cube * rh) * q)
        # expm1(rh + rl) = expm1(rh) + rl exp(rh), to rl^2
        sh, sl = fast_two_sum(sh, sl + rl * (1 + sh))
        return np.int64(k), sh, sl

    @inline
    def exp(ah: float, al: float, boost: Any) -> tuple[float, float]:
        """exp(ah + al) * 2^boost (boost keeps tiny factors normal; the caller scales back)."""
        k, sh, sl = exp_reduced(ah, al)
        th, tl = fast_two_sum(1.0, sh)
        scale = pow2(k + boost)
        return th * scale, (tl + sl) * scale

    @inline
    def expm1(ah: float, al: float) -> tuple[float, float]:
        """exp(ah + al) - 1 for -1000 < ah <= 710, to ~1e-19 relative (no cancellation near 0)."""
        k, sh, sl = exp_reduced(ah, al)
        th, tl = fast_two_sum(1.0, sh)
        scale = pow2(k)
        mh, ml = two_sum(-1.0, th * scale)
        mh, ml = fast_two_sum(mh, ml + (tl + sl) * scale)
        return (sh, sl) if k == 0 else (mh, ml)

    @inline
    def exp_and_expm1(ah: float, boost: Any) -> tuple[float, float, float, float]:
        """exp(ah) * 2^boost and exp(ah) - 1 from one reduction, for -1000 < ah <= 0."""
        k, sh, sl = exp_reduced(ah, 0.0)
        th, tl = fast_two_sum(1.0, sh)
        tl += sl
        scale = pow2(k + boost)
        mh, ml = two_sum(-1.0, th * pow2(k))
        mh, ml = fast_two_sum(mh, ml + tl * pow2(k))
        if k == 0:
            mh, ml = sh, sl
        return th * scale, tl * scale, mh, ml

    @inline
    def log1p_unit(eh: float, el: float) -> tuple[float, float]:
        """log(1 + e) for 0 <= e <= 1 as 2 atanh(s), s = e / (2 + e) <= 1/3 in double-double,
        the terms past 2s (below 4 % of it) in float64: no libm call, so the loop vectorises."""
        dh, dl = fast_two_sum(2.0, eh)
        uh, ul = div(2 * eh, 2 * el, dh, dl + el)  # 2s (2e, not e / 2: exact when subnormal)
        t = 0.25 * (uh * uh)
        acc = 0.0
        for c in _ATANH_HIGH:
            acc = acc * t + c
        for c in _ATANH_LOW:
            acc = acc * t + c
        lh, ll = two_sum(uh, uh * t * acc)
        return fast_two_sum(lh, ll + ul)

    @inline
    def erfcx(z: float) -> float:
        """erfcx(z) for finite z >= 0 in float64, to about 1 ULP (see erfcx.py)."""
        if z >= _ASYMPTOTIC_FROM:
            w = 1 / (2 * (z * z))
            acc = _SERIES[-1]
            for n in range(len(_SERIES) - 2, -1, -1):
                acc = acc * w + _SERIES[n]
            return acc * (_INV_SQRT_PI / z)
        k = min(int(z * (1 / WIDTH)), _PIECES - 1)
        s = (4 / (2 * WIDTH)) * z - (2 * k + 1)
        acc = 0.0
        for j in range(_TABLE.shape[1]):
            acc = acc * s + _TABLE[k, j]
        return acc
