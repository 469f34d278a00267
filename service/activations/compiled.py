# mypy: disable-error-code="misc, no-any-return, untyped-decorator, call-arg, call-overload, var-annotated, assignment"
"""float32 value + derivative in one compiled pass (numba): the same float64 formulas as the
numpy kernels, with exp written out so that LLVM vectorises the loop (libm's exp would not be).

exp: Cody-Waite reduction by ln 2 (hi part exact in 16 bits), 1 + r q(r) on |r| <= ln2/2, q of
degree 8 (Chebyshev interpolation of expm1(r)/r, mpmath at 40 digits: relative error < 4e-14,
exp(0) = 1 exactly; degree 7, < 3e-12, in tanh, which amplifies it 10^3-fold at most, and gelu),
2^k from its bits: far below a float32 ULP even amplified 10^4-fold (tanhshrink near 0.05), so
each result is the float64 value rounded once, as in the numpy path (tanh's kernel 1.62-1.70 ->
1.44-1.49 ms against a degree-11 Taylor form). Arguments are clamped to [-200, 0] or so, where
exp is far below float32's range (results that must underflow still do). ``KERNELS`` is empty
when numba is not installed: the numpy kernels serve.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from service.jit import compile_kernel
from service.special.erfcx_table import MILLS_P, MILLS_Q

try:
    import numba
    from llvmlite import ir
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - the numpy kernels serve without numba
    numba = None

AVAILABLE = numba is not None
"""numba is installed: the compiled float32 kernels serve."""
Fused = Callable[[Any, Any, Any, Any], None]
KERNELS: dict[str, Fused] = {}
"""name -> kernel(x, params array, value out, grad out), float32, 1-D contiguous."""

_INV_LN2 = 1.4426950408889634
_LN2_HI = 0.693145751953125
_LN2_LO = 1.4286068203094173e-06
_MAGIC = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer
# q(r) ~ expm1(r)/r on |r| <= ln2/2, highest power first: degree 8 (exp), degree 7 (_exp_short)
# fmt: off
_Q9 = (
    2.7624937275330866e-06, 2.4876238717162466e-05, 0.00019841209542343277, 0.0013888821547560252,
    0.008333333352821848, 0.041666666891592485, 0.16666666666651397, 0.49999999999797146,
    1.0000000000000002,
)
_Q8 = (
    2.4867928975250052e-05, 0.0001990763568628387, 0.0013888839027757758, 0.008333283438953646,
    0.04166666678650927, 0.16666666786668627, 0.4999999999995514, 0.9999999999954907,
)
# fmt: on
_K = 0.7978845608028654
_KAPPA = 0.044715
_SELU_ALPHA_SCALE = 1.7580993408473768599402175208123
_SELU_SCALE = 1.0507009873554804934193349852946
_LN_INV_SQRT_2PI = -0.5 * math.log(2 * math.pi)  # ln phi(0)

if numba is not None:

    def _jit(function: Any) -> Any:
        return compile_kernel(function, {"contract"})

    _inline = numba.njit(inline="always", fastmath={"contract"}, error_model="numpy")

    @intrinsic
    def _from_bits(typingctx: Any, bits: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], ir.DoubleType())

        return numba.float64(numba.int64), codegen

    def _exp_by(q_coefficients: tuple[float, ...]) -> Any:
        @_inline
        def exp(a: float) -> float:
            """exp(a) for -745 < a < 709."""
            k = (a * _INV_LN2 + _MAGIC) - _MAGIC
            r = (a - k * _LN2_HI) - k * _LN2_LO
            q = 0.0
            for c in q_coefficients:
                q = q * r + c
            return (1 + r * q) * _from_bits((np.int64(k) + 1023) << 52)

        return exp

    _exp = _exp_by(_Q9)  # relative error < 4e-14
    _exp_short = _exp_by(_Q8)  # < 3e-12: where amplified 10^3-fold at most (gelu)

    @_inline
    def _exp_expm1(a: float) -> tuple[float, float]:
        """exp(a) and exp(a) - 1 as _exp_short, the latter (2^k - 1) + 2^k r q: as precise as
        exp (2^k - 1 is exact), near 0 too (tanh: 1.34-1.42 -> 1.32 ms against a series)."""
        k = (a * _INV_LN2 + _MAGIC) - _MAGIC
        r = (a - k * _LN2_HI) - k * _LN2_LO
        q = 0.0
        for c in _Q8:
            q = q * r + c
        scale, rq = _from_bits((np.int64(k) + 1023) << 52), r * q
        return (1 + rq) * scale, (scale - 1) + scale * rq

    @intrinsic
    def _to_bits(typingctx: Any, value: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], ir.IntType(64))

        return numba.int64(numba.float64), codegen

    @_inline
    def _expm1_neg(m: float) -> float:
        """exp(m) - 1 for m <= 0 (a series near 0, where exp(m) - 1 would cancel)."""
        series = m * (1 + m * (0.5 + m * (1 / 6 + m * (1 / 24))))
        return series if m > -1e-3 else _exp(max(m, -200.0)) - 1

    @_inline
    def _log1p_unit(e: float) -> float:
        """log(1 + e) for 0 <= e <= 1: 2 atanh(s), s = e / (2 + e) <= 1/3."""
        s = e / (2 + e)
        s2 = s * s
        acc = 1 / 27.0
        for n in range(12, -1, -1):
            acc = acc * s2 + 1 / (2 * n + 1)
        return 2 * s * acc

    @_inline
    def _mills(a: float) -> float:
        """Mills' ratio Phi(-a) / phi(a), 0 <= a <= 15, to 3.5e-11 (0.0006 float32 ULP; 1e-8 up
        to 20): P(a) / Q(a), degree 6 over 6 (erfcx_table.py), two short independent chains and
        one division: gelu's kernel -27% against a degree-15 polynomial in t = 2 / (2 + z)."""
        num = 0.0
        for c in MILLS_P:
            num = num * a + c
        den = 1.0
        for c in MILLS_Q:
            den = den * a + c
        return num / den

    @_jit
    def _sigmoid(x: Any, p: Any, value: Any, grad: Any) -> None:
        for i in range(x.size):
            w = np.float64(x[i])
            e = _exp(-min(abs(w), 200.0))
            d = 1 + e
            value[i] = (1.0 if w >= 0 else e) / d
            grad[i] = e / (d * d)

    @_jit
    def _silu(x: Any, p: Any, value: Any, grad: Any) -> None:
        for i in range(x.size):
            w = np.float64(x[i])
            c = min(max(w, -200.0), 200.0)
            e = _exp(-abs(c))
            d = 1 + e
            n, q = (1.0, e) if w >= 0 else (e, 1.0)
            value[i] = max(w, -200.0) * n / d
            grad[i] = n * ((1 + c * q) + e) / (d * d)

    @_jit
    def _tanh(x: Any, p: Any, value: Any, grad: Any) -> None:
        for i in range(x.size):
            w = np.float64(x[i])
            a = min(abs(w), 100.0)
            e, m = _exp_expm1(-2 * a)  # m = expm1(-2a) to 3e-12 even near 0, no series needed
            r = 1 / (2 + m)  # 1 / (1 + e): one division serves both outputs
            t = abs(m) * r  # abs: tanh(+-0) = +0, as before
            value[i] = t if w >= 0 else -t
            grad[i] = 4 * e * (r * r)

    @_jit
    def _gelu_tanh(x: Any, p: Any, value: Any, grad: Any) -> None:
        for i in range(x.size):
            w = np.float64(x[i])
            c = min(max(w, -1e4), 1e4)
            two_u = 2 * _K * (c + _KAPPA * (c * c * c))
            e = _exp(-min(abs(two_u), 200.0))
            d = 1 + e
            n, q = (1.0, e) if w >= 0 else (e, 1.0)
            value[i] = max(w, -200.0) * n / d
            slope = 2 * _K * c * (1 + 3 * _KAPPA * (c * c))
            grad[i] = n / d * (1 + slope * q / d)

    @_jit
    def _gelu(x: Any, p: Any, value: Any, grad: Any) -> None:
        for i in range(x.size):
            w = np.float64(x[i])
            m = max(w, -20.0)  # beyond +-20, float32 results are 0 or x (phi(20) ~ 6e-88)
            c = min(m, 20.0)
            # the normal density phi(c): c^2 is exact (c has 24 bits), exp's error 2e-12
            density = _exp_short(-0.5 * (c * c) + _LN_INV_SQRT_2PI)
            tail = density * _mills(abs(c))  # Phi(-|c|), to 4e-11 relative
            cdf = 1 - tail if c >= 0 else tail
            value[i] = m * cdf
            grad[i] = cdf + c * density

    @_jit
    def _elu(x: Any, p: Any, value: Any, grad: Any) -> None:
        # p = (alpha, 1 / divisor, outer scale, positive slope): elu, selu and celu in one
        alpha, inverse, scale, slope = p[0], p[1], p[2], p[3]
        for i in range(x.size):
            w = np.float64(x[i])
            q = min(w, 0.0) * inverse
            positive = w > 0
            value[i] = slope * max(w, 0.0) + scale * alpha * _expm1_neg(q)
            grad[i] = slope if positive else scale * alpha * inverse * _exp(max(q, -200.0))

    @_jit
    def _softplus(x: Any, p: Any, value: Any, grad: Any) -> None:
        beta, threshold, top = p[0], p[1], p[2]
        for i in range(x.size):
            w = np.float64(x[i])
            z = min(w, top) * beta
            e = _exp(-min(abs(z), 200.0))
            soft = (max(z, 0.0) + _log1p_unit(e)) / beta
            linear = w * beta > threshold
            value[i] = w if linear else soft
            grad[i] = 1.0 if linear else (1.0 if z >= 0 else e) / (1 + e)

    @_jit
    def _mish(x: Any, p: Any, value: Any, grad: Any) -> None:
        for i in range(x.size):
            w = np.float64(x[i])
            c = min(max(w, -200.0), 200.0)
            e = _exp(-abs(c))
            d = 1 + e
            if_pos = w >= 0
            q = e if if_pos else 1.0
            den = d * d + q * q
            t = 1 - 2 * (e * e) / den if if_pos else e * (e + 2) / den
            value[i] = max(w, -200.0) * t
            above = t + 4 * c * (e * e) * d / (den * den)
            below = e * (((e + 4) * e + (6 + 4 * c)) * e + 4 * (1 + c)) / (den * den)
            grad[i] = above if if_pos else below

    @_jit
    def _logsigmoid(x: Any, p: Any, value: Any, grad: Any) -> None:
        for i in range(x.size):
            w = np.float64(x[i])
            e = _exp(-min(abs(w), 200.0))
            value[i] = min(w, 0.0) - _log1p_unit(e)
            grad[i] = (e if w >= 0 else 1.0) / (1 + e)

    @_jit
    def _tanhshrink(x: Any, p: Any, value: Any, grad: Any) -> None:
        for i in range(x.size):
            w = np.float64(x[i])
            a = min(abs(w), 200.0)
            m = _expm1_neg(-2 * a)
            t = -m / (2 + m)  # tanh(|x|)
            y = a * a
            series = a * y * (1 / 3 + y * (-2 / 15 + y * (17 / 315 + y * (-62 / 2835))))
            shrink = series if a < 0.05 else abs(w) - t
            value[i] = shrink if w >= 0 else -shrink
            grad[i] = t * t

    @_jit
    def _softsign(x: Any, p: Any, value: Any, grad: Any) -> None:
        for i in range(x.size):
            w = np.float64(x[i])
            c = min(max(w, -3.5e38), 3.5e38)
            r = 1 / (1 + abs(c))
            value[i] = c * r
            grad[i] = r * r

    KERNELS.update(mish=_mish, logsigmoid=_logsigmoid, tanhshrink=_tanhshrink, softsign=_softsign)
    KERNELS.update(sigmoid=_sigmoid, silu=_silu, tanh=_tanh, gelu_tanh=_gelu_tanh, gelu=_gelu)
    KERNELS.update(elu=_elu, softplus=_softplus)


def seed_cache(seed: Path) -> bool:
    """Copy numba cache files made elsewhere (at image build) into numba's cache directory,
    where the kernels then load from; False (nothing copied) without numba, without a cache
    directory (NUMBA_CACHE_DIR) or without the seed."""
    target = getattr(numba.config, "CACHE_DIR", "") if numba is not None else ""
    if not target or not seed.is_dir():
        return False
    shutil.copytree(seed, target, dirs_exist_ok=True)
    return True


def elu_params(alpha: float, divisor: float, scale: float, slope: float) -> Any:
    """(alpha, 1/divisor, scale, slope, divisor): elu (a, 1, 1, 1), selu, celu (a, a, 1, 1)."""
    return np.array([alpha, 1 / divisor, scale, slope, divisor])


SELU = (1.0, 1.0, _SELU_ALPHA_SCALE, _SELU_SCALE)
