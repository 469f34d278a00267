# mypy: disable-error-code="misc, no-any-return, untyped-decorator, var-annotated, assignment, call-arg"
"""float64 value + derivative in one compiled pass (numba) for the functions whose float64 forms
need more than float64 inside: tanh, exact and tanh GELU, mish. The parts that an argument's
rounding or a cancellation would amplify are carried in double-double (doubledouble.py), the
rest in float64; the formulas are those of the numpy kernels (smooth.py, gelu.py), which keep
long double and serve without numba. ``KERNELS`` maps a fused name to kernel(x, params, value
out, grad out), 1-D contiguous float64.

Factors that would be subnormal (exp below 2^-1022) are computed times 2^64 ("boost") and the
result scaled back last, so that a normal result keeps its precision.
"""

from __future__ import annotations

import math
from typing import Any

from service.activations import compiled
from service.activations import doubledouble as dd
from service.jit import compile_kernel

try:
    import numba
except ImportError:  # pragma: no cover - the numpy kernels serve without numba
    numba = None

KERNELS: dict[str, compiled.Fused] = {}

_K = (0.7978845608028654, -4.9846544045555e-17)  # sqrt(2/pi) as a double-double
_KAPPA = (0.044715, 2.1960211427086e-18)
_INV_SQRT2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327
#: 1/3 as a double-double, and the series of (x - tanh x) / x^3 after it (in x^2, last first).
_THIRD = (0.3333333333333333, 1.850371707708594e-17)
_TANHSHRINK_TAIL = tuple(
    n / d
    for n, d in reversed(
        [(-2, 15), (17, 315), (-62, 2835), (1382, 155925), (-21844, 6081075),
         (929569, 638512875), (-6404582, 10854718875), (443861162, 1856156927625)]
    )
)  # fmt: skip
_BOOST_BELOW = -640.0  # exp arguments below this are boosted by 2^64
_UNBOOST = 2.0**-64

if numba is not None:

    def _jit(function: Any) -> Any:
        # No fastmath at all: contraction or reassociation would undo the error-free transforms.
        return compile_kernel(function, set())

    @_jit
    def _tanh(x: Any, p: Any, value: Any, grad: Any) -> None:
        # tanh|x| = -m / (2 + m), m = expm1(-2|x|) in double-double (torch's float64 tanh is
        # within 0.61 ULP: one float64 rounding of the quotient is not enough);
        # tanh' = 4e / (2 + m)^2 with e = exp(-2|x|), boosted below -640.
        for i in range(x.size):
            w = x[i]
            a = min(abs(w), 400.0)
            boost = 64 if -2 * a < _BOOST_BELOW else 0
            eh, el, mh, ml = dd.exp_and_expm1(-2 * a, boost)
            dh, dl = dd.fast_two_sum(2.0, mh)  # 1 + e
            dl += ml
            th, _ = dd.div(-mh, -ml, dh, dl)
            value[i] = math.copysign(th, w)
            s2h, s2l = dd.mul(dh, dl, dh, dl)
            q, _ = dd.div(4 * eh, 4 * el, s2h, s2l)
            grad[i] = q * (_UNBOOST if boost else 1.0)

    @_jit
    def _gelu(x: Any, p: Any, value: Any, grad: Any) -> None:
        # x Phi(x); for x < 0 Phi(x) = 0.5 exp(-x^2/2) erfcx(|x|/sqrt 2) with x^2 and exp in
        # double-double; gelu' = Phi(x) + x phi(x) (one factor exp(-x^2/2) below 0).
        for i in range(x.size):
            w = x[i]
            c = min(max(w, -40.0), 40.0)
            sq, sq_lo = dd.two_prod(c, c)
            boost = 64 if -0.5 * sq < _BOOST_BELOW else 0
            unboost = _UNBOOST if boost else 1.0
            gh, gl = dd.exp(-0.5 * sq, -0.5 * sq_lo, boost)
            half = 0.5 * dd.erfcx(abs(c) * _INV_SQRT2)
            th, tl = dd.two_prod(half, gh)  # 0.5 erfc(|c| / sqrt 2), boosted
            tl += half * gl
            density = c * _INV_SQRT_2PI
            if c >= 0:
                phi = 1 - (th + tl) * unboost
                value[i] = w * phi
                grad[i] = phi + density * (gh * unboost)
            else:
                wc = max(w, -800.0)
                vh, vl = dd.two_prod(wc, th)
                value[i] = (vh + (vl + wc * tl)) * unboost
                inner = half + density  # cancels near the root of gelu' (local scale)
                gr, gr_lo = dd.two_prod(gh, inner)
                grad[i] = (gr + (gr_lo + gl * inner)) * unboost

    @dd.inline
    def _two_u(c: float) -> tuple[float, float, float, float]:
        """2u = 2 sqrt(2/pi) (c + 0.044715 c^3) and the slope 2 sqrt(2/pi) (1 + 3 kappa c^2) c,
        both as double-doubles (hi, lo, slope hi, slope lo)."""
        c2h, c2l = dd.two_prod(c, c)
        th, tl = dd.mul(_KAPPA[0], _KAPPA[1], c2h, c2l)  # kappa c^2
        oh, ol = dd.fast_two_sum(1.0, th)
        mh, ml = dd.mul(c, 0.0, oh, ol + tl)
        uh, ul = dd.mul(2 * _K[0], 2 * _K[1], mh, ml)
        s3h, s3l = dd.two_prod(3.0, th)
        oh, ol = dd.fast_two_sum(1.0, s3h)
        sh, sl = dd.mul(c, 0.0, oh, ol + (s3l + 3 * tl))
        slope_h, slope_l = dd.mul(2 * _K[0], 2 * _K[1], sh, sl)
        return uh, ul, slope_h, slope_l

    @_jit
    def _gelu_tanh(x: Any, p: Any, value: Any, grad: Any) -> None:
        # 0.5 x (1 + tanh u) = x sigmoid(2u) = x n / (1 + e), e = exp(-|2u|), n = 1 or e;
        # gelu' = sigmoid(2u) (1 + slope q / (1 + e)), q = e or 1.
        for i in range(x.size):
            w = x[i]
            c = min(max(w, -800.0), 800.0)
            uh, ul, slope_h, slope_l = _two_u(c)
            negative = uh < 0
            ah = max(-abs(uh), -1000.0)
            boost = 64 if negative and ah < _BOOST_BELOW else 0
            unboost = _UNBOOST if boost else 1.0
            eh, el = dd.exp(ah, ul if negative else -ul, boost)
            dh, dl = dd.fast_two_sum(1.0, eh * unboost)
            nh, nl = (eh, el) if negative else (1.0, 0.0)
            sh, sl = dd.div(nh, nl, dh, dl + el * unboost)  # sigmoid(2u), boosted
            wc = max(w, -800.0)
            value[i] = (wc * sh + min(wc, 1e300) * sl) * unboost
            qh, ql = (1.0, 0.0) if negative else (eh, el)
            rh, rl = dd.mul(slope_h, slope_l, qh, ql)
            rh, rl = dd.div(rh, rl, dh, dl + el * unboost)
            fh, fl = dd.add(1.0, 0.0, rh, rl)  # cancels near the root of gelu' (local scale)
            grad[i] = (sh * fh + (sh * fl + sl * fh)) * unboost

    @_jit
    def _mish(x: Any, p: Any, value: Any, grad: Any) -> None:
        # tanh(softplus(x)) = 1 - 2e^2 / den above 0, n (e + 2) / den below, den = (1 + e)^2 + q^2
        # (q = e above, 1 below), e = exp(-|x|); mish' as in smooth.mish_grad, all double-double.
        for i in range(x.size):
            w = x[i]
            c = min(max(w, -800.0), 800.0)
            negative = c < 0
            boost = 64 if negative and -abs(c) < _BOOST_BELOW else 0
            unboost = _UNBOOST if boost else 1.0
            nh, nl = dd.exp(-abs(c), 0.0, boost)
            eh, el = nh * unboost, nl * unboost
            dh, dl = dd.fast_two_sum(1.0, eh)
            dh, dl = dd.fast_two_sum(dh, dl + el)
            d2h, d2l = dd.mul(dh, dl, dh, dl)
            qh, ql = (1.0, 0.0) if negative else (eh, el)
            q2h, q2l = dd.mul(qh, ql, qh, ql)
            denh, denl = dd.add(d2h, d2l, q2h, q2l)
            den2h, den2l = dd.mul(denh, denl, denh, denl)
            e2h, e2l = dd.mul(eh, el, eh, el)
            if negative:
                th, tl = dd.add(eh, el, 2.0, 0.0)
                th, tl = dd.mul(nh, nl, th, tl)
                th, tl = dd.div(th, tl, denh, denl)
                ph, pl = dd.add(eh, el, 4.0, 0.0)
                ph, pl = dd.mul(ph, pl, eh, el)
                sixh, sixl = dd.two_sum(6.0, 4 * c)
                ph, pl = dd.add(ph, pl, sixh, sixl)
                ph, pl = dd.mul(ph, pl, eh, el)
                oh, ol = dd.two_sum(1.0, c)
                ph, pl = dd.add(ph, pl, 4 * oh, 4 * ol)  # cancels near the root of mish'
                ph, pl = dd.mul(nh, nl, ph, pl)
                gh, _ = dd.div(ph, pl, den2h, den2l)
            else:
                rh, rl = dd.div(2 * e2h, 2 * e2l, denh, denl)
                th, tl = dd.add(1.0, 0.0, -rh, -rl)
                ah, al = dd.mul(e2h, e2l, dh, dl)
                ah, al = dd.mul(ah, al, 4 * c, 0.0)
                ah, al = dd.div(ah, al, den2h, den2l)
                gh, _ = dd.add(th, tl, ah, al)
            wc = max(w, -800.0)
            value[i] = (wc * th + min(wc, 1e300) * tl) * unboost
            grad[i] = gh * unboost

    @dd.inline
    def _shrink_series(a: float) -> float:
        """a - tanh(a) = a^3 (1/3 - 2a^2/15 + ...) for 0 <= a <= 0.15: the tail after 1/3 in
        float64 (it is below 1 % of 1/3), the rest in double-double."""
        yh, yl = dd.two_prod(a, a)
        tail = 0.0
        for c in _TANHSHRINK_TAIL:
            tail = tail * yh + c
        lh, ll = dd.two_sum(_THIRD[0], tail * yh)
        ch, cl = dd.mul(a, 0.0, yh, yl)
        return dd.mul(ch, cl, lh, ll + _THIRD[1])[0]

    @_jit
    def _tanhshrink(x: Any, p: Any, value: Any, grad: Any) -> None:
        # x - tanh(x): the series near 0, else |x| - tanh|x| from the double-double tanh (the
        # subtraction of its high part is exact up to |x| = 1.9); tanhshrink' = tanh^2.
        for i in range(x.size):
            w = x[i]
            a = abs(w)
            mh, ml = dd.expm1(-2 * min(a, 20.0), 0.0)
            dh, dl = dd.fast_two_sum(2.0, mh)
            th, tl = dd.div(-mh, -ml, dh, dl + ml)
            shrink = _shrink_series(a) if a <= 0.15 else (a - th) - tl
            value[i] = math.copysign(shrink, w)
            grad[i] = th * th + 2 * (th * tl)

    @_jit
    def _elu(x: Any, p: Any, value: Any, grad: Any) -> None:
        # p = (alpha, 1 / divisor, outer scale, positive slope, divisor) as compiled._elu's;
        # q = min(x, 0) / divisor carried as q + its exact remainder (celu's non-dyadic alpha:
        # exp would amplify q's rounding by |q|), expm1 and exp in double-double.
        alpha, scale, slope, divisor = p[0], p[2], p[3], p[4]
        factor = scale * alpha
        for i in range(x.size):
            w = x[i]
            m = min(w, 0.0)
            q = min(max(m / divisor, -1000.0), 710.0)  # exp(q) is 0 or inf beyond
            c = dd.fma(-q, divisor, m) / divisor if -1000.0 < q < 710.0 else 0.0
            mh, ml = dd.expm1(q, c)
            boost = 64 if q < -640.0 else 0
            eh, el = dd.exp(q, c, boost)
            vh, vl = dd.two_prod(factor, mh)
            value[i] = slope * max(w, 0.0) + (vh + (vl + factor * ml))
            gh, gl = dd.two_prod(factor / divisor, eh)
            tail = (gh + (gl + (factor / divisor) * el)) * (_UNBOOST if boost else 1.0)
            grad[i] = slope if w > 0 else tail

    KERNELS.update(tanh=_tanh, gelu=_gelu, gelu_tanh=_gelu_tanh, mish=_mish, elu=_elu)
    KERNELS.update(tanhshrink=_tanhshrink)
