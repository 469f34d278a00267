# mypy: disable-error-code="misc, no-any-return, untyped-decorator, call-arg, call-overload, var-annotated"
"""float32 softmax, log_softmax and glu with their VJPs in one compiled pass per row (numba),
with compiled.py's exp: the same float64 forms as softmax.py, rounded once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from service.activations import compiled
from service.jit import compile_kernel

ALONG: dict[str, Callable[..., None]] = {}
"""softmax, log_softmax: kernel(x, row max, g, log, value, vjp) on (rows, along) float32 arrays;
glu: kernel(x, g, value, vjp) with x and vjp (before, 2, rest), value and g (before, rest)."""

if compiled.AVAILABLE:
    from service.activations.compiled import (
        _LN2_HI,
        _LN2_LO,
        _exp,
        _exp_short,
        _from_bits,
        _inline,
        _jit,
        _log1p_unit,
        _to_bits,
    )

    @_inline
    def _log1p(r: float) -> float:
        """log(1 + r) for r >= 0: 2 atanh below 1, else exponent * ln 2 + log1p(mantissa - 1)."""
        v = 1 + max(r, 1.0)
        bits = _to_bits(v)
        k = (bits >> 52) - 1023
        m = _from_bits((bits & 0xFFFFFFFFFFFFF) | (1023 << 52))
        big = k * _LN2_HI + (_log1p_unit(m - 1) + k * _LN2_LO)
        return _log1p_unit(r) if r < 1 else big

    @_inline
    def _join(hi: int, lo: int) -> float:
        """The float64 whose bits are hi (upper 32) and lo (lower 32)."""
        return _from_bits((np.int64(hi) << 32) | (np.int64(lo) & 0xFFFFFFFF))

    def _sums_python(hi: Any, lo: Any, g: Any) -> tuple[float, float]:
        """sum e and sum g e over a row (e = _join(hi, lo)) in one vectorised pass
        (reassociated: float64 partial sums, for float32 results)."""
        total = weighted = 0.0
        for j in range(hi.size):  # indexed: an iterator loop does not vectorise
            e = _join(hi[j], lo[j])
            total += e
            weighted += np.float64(g[j]) * e
        return total, weighted

    def _log_sums_python(x: Any, m: float, hi: Any, lo: Any, g: Any) -> tuple[float, ...]:
        """sum e, then the e below the maximum m and the ties (x = m, whose e is exactly 1)
        apart, and sum g, in one pass as _sums."""
        total = below = ties = g_total = 0.0
        for j in range(hi.size):
            e, top = _join(hi[j], lo[j]), np.float64(x[j]) == m
            total += e
            below += 0.0 if top else e
            ties += 1.0 if top else 0.0
            g_total += np.float64(g[j])
        return total, below, ties, g_total

    _sums = compile_kernel(_sums_python, {"reassoc", "contract"})
    _log_sums = compile_kernel(_log_sums_python, {"reassoc", "contract"})

    @_jit
    def _softmax_row(x: Any, m: float, g: Any, log: bool, value: Any, vjp: Any, e: Any) -> None:
        # e = exp(x - m) kept as the two 32-bit halves of its bits: with only 32-bit loads and
        # stores LLVM vectorises the loops 8 float64 lanes wide (4 with a float64 buffer), same
        # bits (softmax's kernel 1.59-1.68 -> 1.52-1.54 ms per 1e6; log_softmax's unchanged)
        hi, lo = e[0], e[1]
        for j in range(x.size):
            bits = _to_bits(_exp_short(max(np.float64(x[j]) - m, -200.0)))
            hi[j], lo[j] = bits >> 32, bits & 0xFFFFFFFF
        # three passes (exp, sums, outputs) instead of nine: log_softmax 2.07-2.10 -> 1.72-1.77
        # ms; softmax's two sums apart from log_softmax's four: 1.70 -> 1.54-1.58 ms
        if log:
            total, below, ties, g_total = _log_sums(x, m, hi, lo, g)
            inverse = 1 / total
            # log(total) as log1p(the terms below the maximum and the ties beyond the first):
            # log of a sum near 1 would cancel
            log_total = _log1p(below + (ties - 1))
            for j in range(x.size):
                value[j] = (np.float64(x[j]) - m) - log_total
                vjp[j] = np.float64(g[j]) - (_join(hi[j], lo[j]) * inverse) * g_total
        else:
            total, weighted = _sums(hi, lo, g)
            inverse = 1 / total
            dot = weighted * inverse  # sum g y
            for j in range(x.size):
                y = _join(hi[j], lo[j]) * inverse
                value[j] = y
                vjp[j] = y * (np.float64(g[j]) - dot)

    @_jit
    def _softmax_rows(x: Any, m: Any, g: Any, log: bool, value: Any, vjp: Any) -> None:
        e = np.empty((2, x.shape[1]), np.int32)
        for i in range(x.shape[0]):
            _softmax_row(x[i], np.float64(m[i]), g[i], log, value[i], vjp[i], e)

    @_jit
    def _glu_row(a: Any, b: Any, g: Any, value: Any, da: Any, db: Any) -> None:
        for k in range(a.size):
            ak, bk = np.float64(a[k]), np.float64(b[k])
            e = _exp(-min(abs(bk), 200.0))
            d = 1 + e
            nan = bk != bk  # min/max in the exp argument would drop a NaN gate: keep it
            s = bk if nan else (1.0 if bk >= 0 else e) / d
            gk = np.float64(g[k])
            value[k] = ak * s
            da[k] = gk * s
            db[k] = gk * ak * (bk if nan else e / (d * d))

    @_jit
    def _glu(x: Any, g: Any, value: Any, vjp: Any) -> None:
        for i in range(x.shape[0]):
            _glu_row(x[i, 0], x[i, 1], g[i], value[i], vjp[i, 0], vjp[i, 1])

    ALONG.update(softmax=_softmax_rows, glu=_glu)
