# mypy: disable-error-code="misc, no-any-return, untyped-decorator, var-annotated, assignment"
"""float64 value + derivative in one compiled pass (numba) for the logistic family: sigmoid,
silu, logsigmoid, softplus, and glu along a dimension. exp(-|t|) comes from doubledouble.exp
(double-double, boosted by 2^64 where a factor would be subnormal), the quotients and the
cancelling sums (1 + x near silu's root) in double-double; each result is rounded once or
twice. The numpy kernels serve without numba."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from service.activations import compiled
from service.activations import doubledouble as dd
from service.jit import compile_kernel

try:
    import numba
except ImportError:  # pragma: no cover - the numpy kernels serve without numba
    numba = None

KERNELS: dict[str, compiled.Fused] = {}
ALONG: dict[str, Callable[..., None]] = {}
"""glu: kernel(x, g, value, vjp) as compiled_along's, in float64."""
_UNBOOST = 2.0**-64

if numba is not None:

    def _jit(function: Any) -> Any:
        return compile_kernel(function, set())

    @dd.inline
    def _logistic(t: float) -> tuple[float, float, float, float, float, float, float]:
        """sigmoid(t) = n / (1 + e) and e = exp(-|t|) as double-doubles, n boosted by 2^64
        below t = -640 (then times ``unboost``): (s hi, s lo, e hi, e lo, d hi, d lo, unboost)
        with d = 1 + e."""
        c = min(max(t, -1000.0), 1000.0)
        negative = c < 0
        boost = 64 if c < -640.0 else 0
        unboost = _UNBOOST if boost else 1.0
        nh, nl = dd.exp(-abs(c), 0.0, boost)
        eh, el = nh * unboost, nl * unboost
        dh, dl = dd.fast_two_sum(1.0, eh)
        dl += el
        sh, sl = dd.div(nh, nl, dh, dl) if negative else dd.div(1.0, 0.0, dh, dl)
        return sh, sl, eh, el, dh, dl, unboost

    @dd.inline
    def _times(a: float, sh: float, sl: float) -> float:
        """a (sh + sl) rounded once; +-inf and NaN as a * sh."""
        vh, vl = dd.two_prod(a, sh)
        return vh + (vl + a * sl) if abs(vh) < math.inf else vh

    @_jit
    def _sigmoid(x: Any, p: Any, value: Any, grad: Any) -> None:
        for i in range(x.size):
            sh, sl, eh, el, dh, dl, unboost = _logistic(x[i])
            value[i] = (sh + sl) * unboost
            d2h, d2l = dd.mul(dh, dl, dh, dl)
            grad[i] = dd.div(eh, el, d2h, d2l)[0]  # e / (1 + e)^2: subnormal where it is

    @_jit
    def _silu(x: Any, p: Any, value: Any, grad: Any) -> None:
        # x n / (1 + e); silu' = n ((1 + x q) + e) / (1 + e)^2, q = e above 0, 1 below
        for i in range(x.size):
            w = x[i]
            sh, sl, eh, el, dh, dl, unboost = _logistic(w)
            value[i] = _times(max(w, -1000.0), sh, sl) * unboost
            c = min(max(w, -1000.0), 1000.0)
            if c < 0:
                ph, pl = dd.two_sum(1.0, c)  # cancels near the root of silu' (x = -1.28)
            else:
                ph, pl = dd.two_prod(c, eh)
                pl += c * el
                ph, pl = dd.add(ph, pl, 1.0, 0.0)
            ph, pl = dd.add(ph, pl, eh, el)
            ph, pl = dd.mul(sh, sl, ph, pl)
            grad[i] = dd.div(ph, pl, dh, dl)[0] * unboost

    @_jit
    def _softplus(x: Any, p: Any, value: Any, grad: Any) -> None:
        beta, threshold = p[0], p[1]
        top = min(threshold / beta, 1.7976931348623157e308)  # p[2] is float32's bound
        for i in range(x.size):
            w = x[i]
            z = min(w, top) * beta
            sh, sl, eh, el, _, _, unboost = _logistic(z)
            lh, ll = dd.log1p_unit(eh, el)
            vh, vl = dd.add(max(z, 0.0), 0.0, lh, ll)
            soft = dd.div(vh, vl, beta, 0.0)[0]
            linear = w * beta > threshold
            value[i] = w if linear else soft
            grad[i] = 1.0 if linear else (sh + sl) * unboost

    @_jit
    def _logsigmoid(x: Any, p: Any, value: Any, grad: Any) -> None:
        for i in range(x.size):
            w = x[i]
            sh, sl, eh, el, _, _, unboost = _logistic(-w)  # logsigmoid' = sigmoid(-x)
            lh, ll = dd.log1p_unit(eh, el)
            # below -1000 log1p(e) is far under half an ULP of x (and -inf stays -inf)
            value[i] = w if w < -1000.0 else dd.add(min(w, 0.0), 0.0, -lh, -ll)[0]
            grad[i] = (sh + sl) * unboost

    @_jit
    def _glu_rows(x: Any, g: Any, value: Any, vjp: Any) -> None:
        # a sigmoid(b); da = g sigmoid(b), db = g a sigmoid'(b) (g a exact, then one rounding);
        # sigmoid'(b) = e / (1 + e)^2, boosted past |b| = 640 where e is (nearly) subnormal
        for i in range(x.shape[0]):
            for k in range(x.shape[2]):
                a, b, gk = x[i, 0, k], x[i, 1, k], g[i, k]
                # one exp: e = exp(-|b|) boosted past |b| = 640 (both signs), d = 1 + e
                far = abs(b) > 640.0
                unboost = _UNBOOST if far else 1.0
                fh, fl = dd.exp(-min(abs(b), 1000.0), 0.0, 64 if far else 0)
                dh, dl = dd.fast_two_sum(1.0, fh * unboost)
                dl += fl * unboost
                if b < 0:  # sigmoid(b) = e / d, boosted where e is
                    sh, sl = dd.div(fh, fl, dh, dl)
                    s_unboost = unboost
                else:
                    sh, sl = dd.div(1.0, 0.0, dh, dl)
                    s_unboost = 1.0
                d2h, d2l = dd.mul(dh, dl, dh, dl)
                qh, ql = dd.div(fh, fl, d2h, d2l)
                # a sigmoid'(b) first: below a / 4, it cannot overflow where g a alone would
                aqh, aql = dd.two_prod(a, qh)
                aql += a * ql
                db = dd.mul(aqh, aql, gk, 0.0)[0] if abs(aqh) < math.inf else aqh * gk
                nan = b != b  # a NaN gate: NaN out, as the numpy kernels
                value[i, k] = b if nan else _times(a, sh, sl) * s_unboost
                vjp[i, 0, k] = b if nan else _times(gk, sh, sl) * s_unboost
                vjp[i, 1, k] = b if nan else db * unboost

    KERNELS.update(sigmoid=_sigmoid, silu=_silu, softplus=_softplus, logsigmoid=_logsigmoid)
    ALONG.update(glu=_glu_rows)
