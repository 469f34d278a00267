# mypy: disable-error-code="misc, no-any-return, untyped-decorator, var-annotated, assignment"
"""float64 softmax and log_softmax with their VJPs in one compiled pass per row (numba): x - max
split exactly (two-sum), exp, the row sums, the quotients and the VJPs' differences in
double-double, each output rounded once (softmax.py's numpy forms do this in long double)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from service.activations import doubledouble as dd
from service.jit import compile_kernel

try:
    import numba
except ImportError:  # pragma: no cover - the numpy kernels serve without numba
    numba = None

ALONG: dict[str, Callable[..., None]] = {}
"""softmax: kernel(x, row max, g, log, value, vjp) on (rows, along) float64 arrays, as
compiled_along's (log: log_softmax)."""

if numba is not None:

    def _jit(function: Any) -> Any:
        return compile_kernel(function, set())

    @dd.inline
    def _shifted_exp(xj: float, peak: float) -> tuple[float, float, float, float]:
        """x - max as dh + dl (exact) and exp of it as eh + el."""
        dh, dl = dd.two_sum(xj, -peak)
        inside = dh > -1000.0  # beyond, exp is 0 (and dl may be NaN at -inf)
        eh, el = dd.exp(max(dh, -1000.0), dl if inside else 0.0, 0)
        return dh, dl if inside else 0.0, eh, el

    @dd.inline
    def _sum(h: Any, lo: Any) -> tuple[float, float]:
        """sum of h[j] + lo[j] in double-double, four accumulators (independent chains)."""
        a0 = b0 = a1 = b1 = a2 = b2 = a3 = b3 = 0.0
        n = h.size
        for j in range(0, n - 3, 4):
            a0, b0 = dd.add(a0, b0, h[j], lo[j])
            a1, b1 = dd.add(a1, b1, h[j + 1], lo[j + 1])
            a2, b2 = dd.add(a2, b2, h[j + 2], lo[j + 2])
            a3, b3 = dd.add(a3, b3, h[j + 3], lo[j + 3])
        for j in range(n - n % 4, n):
            a0, b0 = dd.add(a0, b0, h[j], lo[j])
        a0, b0 = dd.add(a0, b0, a1, b1)
        a2, b2 = dd.add(a2, b2, a3, b3)
        return dd.add(a0, b0, a2, b2)

    @_jit
    def _row(x: Any, peak: float, g: Any, log: bool, value: Any, vjp: Any, w: Any) -> None:
        # w: scratch (6, n): e (hi, lo), then the terms of the other sums (hi, lo), g
        n = x.size
        for j in range(n):  # independent: vectorises
            _, _, w[0, j], w[1, j] = _shifted_exp(x[j], peak)
            w[4, j], w[5, j] = g[j], 0.0
        th, tl = _sum(w[0], w[1])
        ih, il = dd.div(1.0, 0.0, th, tl)  # 1 / sum: each y is then one product
        sgh, sgl = _sum(w[4], w[5])
        if log:
            for j in range(n):  # the terms below the maximum (whose e is exactly 1)
                below = x[j] != peak
                w[2, j], w[3, j] = (w[0, j], w[1, j]) if below else (0.0, 0.0)
                w[4, j] = 0.0 if below else 1.0
            rh, rl = _sum(w[2], w[3])
            ties = _sum(w[4], w[5])[0]
            # log(sum) = log1p(the terms below the maximum + ties - 1): log near 1 cancels
            uh, ul = dd.add(rh, rl, ties - 1.0, 0.0)
            log_total = math.log1p(uh) + ul / (1 + uh)
            for j in range(n):
                dh, dl, _, _ = _shifted_exp(x[j], peak)
                value[j] = (dh - log_total) + dl
                yh, yl = dd.mul(w[0, j], w[1, j], ih, il)
                ph, pl = dd.mul(yh, yl, sgh, sgl)
                vjp[j] = dd.add(g[j], 0.0, -ph, -pl)[0]
            return
        for j in range(n):
            yh, yl = dd.mul(w[0, j], w[1, j], ih, il)
            ph, pl = dd.two_prod(g[j], yh)
            w[2, j], w[3, j] = ph, pl + g[j] * yl
        doth, dotl = _sum(w[2], w[3])
        for j in range(n):
            yh, yl = dd.mul(w[0, j], w[1, j], ih, il)
            value[j] = yh
            dh, dl = dd.add(g[j], 0.0, -doth, -dotl)
            vjp[j] = dd.mul(yh, yl, dh, dl)[0]

    @_jit
    def _softmax_rows(x: Any, m: Any, g: Any, log: bool, value: Any, vjp: Any) -> None:
        w = np.empty((6, x.shape[1]))
        for i in range(x.shape[0]):
            _row(x[i], m[i], g[i], log, value[i], vjp[i], w)

    ALONG.update(softmax=_softmax_rows)
