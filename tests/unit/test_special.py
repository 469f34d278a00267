"""service/special: erf and expit (the geometry's smooth ops) against mpmath at 40 digits."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from service.special import erf, expit

mpmath.mp.dps = 40


def ulps(ours: np.ndarray, exact: list[mpmath.mpf]) -> float:
    """Largest error of ``ours`` in units of the last place of the exact results."""
    return max(
        float(abs(mpmath.mpf(float(o)) - e) / np.spacing(abs(float(e))))
        for o, e in zip(ours, exact, strict=True)
        if e != 0
    )


GRID = np.concatenate(
    [
        np.linspace(-7, 7, 1401),
        np.geomspace(1e-300, 1, 300),
        -np.geomspace(1e-300, 1, 300),
        np.nextafter(0.5, [0.0, 1.0]),  # both sides of the switch to erfcx
    ]
)


def test_erf_within_2_ulp_of_mpmath() -> None:
    assert ulps(erf(GRID), [mpmath.erf(mpmath.mpf(float(x))) for x in GRID]) <= 2


def test_expit_within_2_ulp_of_mpmath() -> None:
    x = np.concatenate([np.linspace(-700, 700, 1401), np.linspace(-5, 5, 1001)])
    exact = [1 / (1 + mpmath.exp(-mpmath.mpf(float(v)))) for v in x]
    assert ulps(expit(x), exact) <= 2


@pytest.mark.parametrize(
    ("x", "erf_x", "expit_x"),
    [(0.0, 0.0, 0.5), (np.inf, 1.0, 1.0), (-np.inf, -1.0, 0.0), (-800.0, -1.0, 0.0)],
)
def test_special_values(x: float, erf_x: float, expit_x: float) -> None:
    assert erf(np.array([x]))[0] == erf_x
    assert expit(np.array([x]))[0] == expit_x
    assert np.isnan(erf(np.array([np.nan]))[0])
    assert np.isnan(expit(np.array([np.nan]))[0])
    assert np.signbit(erf(np.array([-0.0]))[0])
