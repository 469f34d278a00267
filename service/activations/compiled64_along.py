# mypy: disable-error-code="misc, no-any-return, untyped-decorator, var-annotated, assignment"
"""float64 softmax and log_softmax with their VJPs in one compiled pass per row (numba): x - max
split exactly (two-sum), exp, the row sums, the quotients and the VJPs' differences in
double-double, each output rounded once (softmax.py's numpy forms do this in long double)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from service.activations import compiled
from service.activations import doubledouble as dd

try:
    import numba
except ImportError:  # pragma: no cover - the numpy kernels serve without numba
    numba = None

ALONG: dict[str, Callable[..., None]] = {}
"""softmax: kernel(x, row max, g, log, value, vjp) on (rows, along) float64 arrays, as
compiled_along's (log: log_softmax)."""

if numba is not None:

    def _jit(function: Any) -> Any:
        return compiled.compile_kernel(function, set())

    @dd.inline
    def _shifted_exp(xj: float, peak: float) -> tuple[float, float, float, float]:
        """x - max as dh + dl (exact) and exp of it as eh + el."""
        dh, dl = dd.two_sum(xj, -peak)
        inside = dh > -1000.0  # beyond, exp is 0 (and dl may be NaN at -inf)
        eh, el = dd.exp(max(dh, -1000.0), dl if inside else 0.0, 0)
        return dh, dl if inside else 0.0, eh, el

    @_jit
    def _row(x: Any, peak: float, g: Any, log: bool, value: Any, vjp: Any, e: Any) -> None:
        th = tl = rh = rl = sgh = sgl = 0.0  # sum of e, of e below the max, of g
        ties = 0.0
        for j in range(x.size):
            dh, _, eh, el = _shifted_exp(x[j], peak)
            e[0, j], e[1, j] = eh, el
            th, tl = dd.add(th, tl, eh, el)
            if dh == 0.0:
                ties += 1.0
            else:
                rh, rl = dd.add(rh, rl, eh, el)
            sgh, sgl = dd.add(sgh, sgl, g[j], 0.0)
        if log:
            # log(sum) = log1p(the terms below the maximum + ties - 1): log near 1 cancels
            uh, ul = dd.add(rh, rl, ties - 1.0, 0.0)
            log_total = math.log1p(uh) + ul / (1 + uh)
            for j in range(x.size):
                dh, dl, _, _ = _shifted_exp(x[j], peak)
                value[j] = (dh - log_total) + dl
                yh, yl = dd.div(e[0, j], e[1, j], th, tl)
                ph, pl = dd.mul(yh, yl, sgh, sgl)
                vjp[j] = dd.add(g[j], 0.0, -ph, -pl)[0]
            return
        doth = dotl = 0.0
        for j in range(x.size):
            yh, yl = dd.div(e[0, j], e[1, j], th, tl)
            ph, pl = dd.two_prod(g[j], yh)
            doth, dotl = dd.add(doth, dotl, ph, pl + g[j] * yl)
        for j in range(x.size):
            yh, yl = dd.div(e[0, j], e[1, j], th, tl)
            value[j] = yh
            dh, dl = dd.add(g[j], 0.0, -doth, -dotl)
            vjp[j] = dd.mul(yh, yl, dh, dl)[0]

    @_jit
    def _softmax_rows(x: Any, m: Any, g: Any, log: bool, value: Any, vjp: Any) -> None:
        e = np.empty((2, x.shape[1]))
        for i in range(x.shape[0]):
            _row(x[i], m[i], g[i], log, value[i], vjp[i], e)

    ALONG.update(softmax=_softmax_rows)
