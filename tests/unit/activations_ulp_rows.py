"""ULP rows for softmax, log_softmax and glu: rows of 8 reaching the underflow limits, and glu's
gate over sigmoid's tails."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np

from service.activations import evaluate, get_activation
from tests.unit import activations_exact as exact
from tests.unit.activations_torch import torch_outputs
from tests.unit.activations_ulp import Row, elementwise_grid, exact_arrays, summarise

WIDTH = 8


def softmax_grid(dtype: type) -> np.ndarray:
    """Rows of 8: moderate, reaching past the subnormal limit, far from 0, and near-ties."""
    rng = np.random.default_rng(16)
    info = np.finfo(dtype)
    reach = -math.log(float(info.smallest_subnormal)) * 1.1
    moderate = rng.uniform(-10, 10, (700, WIDTH))
    tails = -rng.uniform(0, reach, (900, WIDTH))
    tails[:, 0] = 0
    far = rng.uniform(-1e4, 1e4, (400, 1)) + rng.uniform(-30, 30, (400, WIDTH))
    ties = rng.normal(0, 1e-3, (500, WIDTH))
    return np.concatenate([moderate, tails, far, ties]).astype(dtype)


def _mp_rows(x: np.ndarray, g: np.ndarray, rows_of, scales_of) -> tuple[list, list, list]:
    values, vjps, scales = [], [], []
    for xr, gr in zip(x, g, strict=True):
        xm = [mp.mpf(float(v)) for v in xr]
        gm = [mp.mpf(float(v)) for v in gr]
        y, v = rows_of(xm, gm)
        values += y
        vjps += v
        scales += scales_of(y, gm)
    return values, vjps, scales


def along_dim_rows(dtype: type) -> list[Row]:
    rows = []
    x = softmax_grid(dtype)
    g: np.ndarray = np.random.default_rng(17).uniform(-2, 2, x.shape).astype(dtype)
    for name, rows_of, scales_of in (
        ("softmax", exact.softmax_rows, exact.softmax_scales),
        ("log_softmax", exact.log_softmax_rows, exact.log_softmax_scales),
    ):
        values, vjps, scales = _mp_rows(x, g, rows_of, scales_of)
        rows += _rows(name, {"dim": -1}, x, g, dtype, (values, values), (vjps, scales))
    rows += _glu_rows(dtype)
    return rows


def _glu_rows(dtype: type) -> list[Row]:
    b = elementwise_grid("sigmoid", dtype)
    rng = np.random.default_rng(18)
    scale = 10.0 ** rng.integers(-3, 4, b.shape)
    a: np.ndarray = (rng.uniform(-3, 3, b.shape) * scale).astype(dtype)
    x = np.stack([a, b], axis=-1)
    g: np.ndarray = rng.uniform(-2, 2, a.shape).astype(dtype)[:, None]
    triples = [
        exact.glu_pair(mp.mpf(float(ai)), mp.mpf(float(bi)), mp.mpf(float(gi)))
        for ai, bi, gi in zip(a, b, g[:, 0], strict=True)
    ]
    values = [t[0] for t in triples]
    vjps = [v for t in triples for v in t[1:]]  # (da, db) per row, as x is laid out
    return _rows("glu", {"dim": -1}, x, g, dtype, (values, values), (vjps, vjps))


def _rows(name, params, x, g, dtype, value_pair, vjp_pair) -> list[Row]:
    activation = get_activation(name)
    p = activation.validate(params)
    ours = evaluate(activation, x, p, ["value", "vjp"], g).arrays
    theirs = torch_outputs(name, x, p, g)
    return [
        summarise(name, "value", dtype, ours["value"], theirs["value"], exact_arrays(value_pair[0], value_pair[1], dtype)),
        summarise(name, "vjp", dtype, ours["vjp"], theirs["vjp"], exact_arrays(vjp_pair[0], vjp_pair[1], dtype)),
    ]  # fmt: skip
