"""The numerical building blocks of the activations: the erfcx table, the Mills ratio fit and
the exact products."""

from __future__ import annotations

import mpmath as mp
import numpy as np

from service.activations import numerics as nx
from service.special import erfcx_table
from service.special.erfcx import erfcx
from tests.unit import erfcx_fit


def test_the_erfcx_table_is_the_mpmath_fit():
    assert tuple(tuple(row) for row in erfcx_fit.fit()) == erfcx_table.COEFFICIENTS


def test_mills_ratio_fit_within_its_bound():
    # The compiled float32 gelu's Phi(-a) / phi(a): 3.5e-11 relative on [0, 15] (the fit's range,
    # where gelu's float32 results are normal), and no pole or sign change up to its clamp at 20.
    a = np.concatenate([np.linspace(0, 15, 3001), np.linspace(15, 20, 101)])
    num, den = np.zeros_like(a), np.ones_like(a)
    for c in erfcx_table.MILLS_P:
        num = num * a + c
    for c in erfcx_table.MILLS_Q:
        den = den * a + c
    error = np.abs(num / den / np.array([erfcx_fit.mills(v) for v in a]) - 1)
    assert error[a <= 15].max() < 3.5e-11, a[np.argmax(error)]
    assert error.max() < 1e-8
    assert den.min() > 0


def test_erfcx_within_2_ulp_on_both_pieces():
    z = np.concatenate([np.linspace(0, 8, 1601), np.geomspace(8, 1e150, 400)])
    with mp.workdps(40):
        exact = np.array([float(mp.erfc(mp.mpf(v)) * mp.exp(mp.mpf(v) ** 2)) for v in z])
    ulps = np.abs(erfcx(z) - exact) / np.spacing(exact)
    assert ulps.max() <= 2, z[np.argmax(ulps)]


def test_two_prod_and_two_diff_are_exact():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1e3, 1000), rng.normal(0, 1e-3, 1000)
    for hi, lo, want in (
        (*nx.two_prod(a, b), [mp.mpf(x) * mp.mpf(y) for x, y in zip(a, b, strict=True)]),
        (*nx.two_diff(a, b), [mp.mpf(x) - mp.mpf(y) for x, y in zip(a, b, strict=True)]),
    ):
        assert all(mp.mpf(h) + mp.mpf(low) == w for h, low, w in zip(hi, lo, want, strict=True))
