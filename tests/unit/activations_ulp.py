"""ULP errors of ours and torch against the mpmath reference, on grids dense in both tails.

Run ``python -m tests.unit.activations_ulp`` for the table alone (the same one the test prints).

Error unit: one ULP of the exact result in the output dtype. Rows count the points whose exact
result is a normal number; near a root r of f' (|x - r| <= 0.25, where f' is a difference of
comparable terms) the unit is one ULP of max(|f'(x)|, |f'(r +- 0.25)|), the local scale; for the
softmax and log_softmax VJPs it is one ULP of the terms the VJP subtracts (y (|g| + |sum g y|),
|g| + exp(y) |sum g|). A result whose exact value is below a quarter of the smallest subnormal
must be 0; one above three quarters of it must not be; one beyond the largest finite number must
be +-inf (``zero/inf faults`` counts the points that break these rules).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath as mp
import numpy as np
import torch

from service.activations import evaluate, get_activation
from tests.unit.activations_exact import DERIVATIVE_ROOTS, ELEMENTWISE, Reference
from tests.unit.activations_torch import torch_outputs

GOAL_ULP = 4.0
ROOT_WINDOW = 0.25
DTYPES = (np.float32, np.float64)


@dataclass(frozen=True)
class Exact:
    """Exact results as float64 pairs hi + lo, and the error unit and zero rules per point."""

    hi: np.ndarray
    lo: np.ndarray
    unit: np.ndarray
    normal: np.ndarray
    must_be_zero: np.ndarray
    must_be_nonzero: np.ndarray


@dataclass(frozen=True)
class Row:
    label: str
    output: str
    dtype: str
    points: int
    ours_max: float
    ours_p999: float
    torch_max: float
    torch_p999: float
    ours_zeros: int
    torch_zeros: int

    @property
    def failures(self) -> list[str]:
        out = []
        if not self.ours_max <= GOAL_ULP:
            out.append(f"max {self.ours_max:.3g} ULP > {GOAL_ULP}")
        if not self.ours_max <= max(self.torch_max, 0.5):
            out.append(f"max {self.ours_max:.3g} ULP > torch's {self.torch_max:.3g}")
        if self.ours_zeros:
            out.append(f"{self.ours_zeros} wrong zeros, underflows or overflows")
        return out


def ulp_of(y: np.ndarray, dtype: type) -> np.ndarray:
    """One ULP of |y| in ``dtype`` (the subnormal spacing below the normal range)."""
    info = np.finfo(dtype)
    _, exponent = np.frexp(np.abs(y).astype(np.float64))
    spacing = np.ldexp(1.0, exponent - 1 - (info.nmant + 1) + 1)
    return np.maximum(spacing, float(info.smallest_subnormal))


def exact_arrays(values: list[Any], scales: list[Any], dtype: type) -> Exact:
    info = np.finfo(dtype)
    top = mp.mpf(float(info.max))
    hi = np.array([float(v) if abs(v) <= top else float(mp.sign(v)) * np.inf for v in values])
    lo = np.array(
        [float(v - mp.mpf(h)) if math.isfinite(h) else 0.0 for v, h in zip(values, hi, strict=True)]
    )
    magnitude = np.abs(hi)
    tiny, sub = float(info.tiny), float(info.smallest_subnormal)
    # The zero rules apply where the unit is the result's own ULP (not a local scale).
    own = np.array([s is v for v, s in zip(values, scales, strict=True)])
    zero = np.array([abs(v) < sub / 4 for v in values]) & own
    nonzero = np.array([abs(v) > 3 * sub / 4 for v in values]) & own
    return Exact(
        hi=hi,
        lo=lo,
        unit=ulp_of(np.array([float(s) for s in scales]), dtype),
        normal=(magnitude >= tiny) & np.isfinite(magnitude),
        must_be_zero=zero,
        must_be_nonzero=nonzero,
    )


def errors(out: np.ndarray, exact: Exact) -> np.ndarray:
    """|out - exact| in units, over the points with a normal exact result (inf for NaN)."""
    o = out.astype(np.float64).ravel()
    with np.errstate(all="ignore"):
        err = np.abs((o - exact.hi) - exact.lo) / exact.unit
    err[~np.isfinite(err)] = np.inf
    return err[exact.normal]


def zero_faults(out: np.ndarray, exact: Exact) -> int:
    """Points breaking the zero rules, or not +-inf where the exact result overflows."""
    o = out.ravel()
    overflow = np.isinf(exact.hi) & (o != exact.hi)
    zeros = exact.must_be_zero & (o != 0)
    return int(np.sum(zeros) + np.sum(exact.must_be_nonzero & (o == 0)) + np.sum(overflow))


def summarise(
    label: str, output: str, dtype: type, ours: np.ndarray, ref: np.ndarray, exact: Exact
) -> Row:
    e_ours, e_torch = errors(ours, exact), errors(ref, exact)
    return Row(
        label=label,
        output=output,
        dtype=np.dtype(dtype).name,
        points=int(exact.normal.sum()),
        ours_max=float(e_ours.max(initial=0)),
        ours_p999=float(np.quantile(e_ours, 0.999, method="higher")) if e_ours.size else 0.0,
        torch_max=float(e_torch.max(initial=0)),
        torch_p999=float(np.quantile(e_torch, 0.999, method="higher")) if e_torch.size else 0.0,
        ours_zeros=zero_faults(ours, exact),
        torch_zeros=zero_faults(ref, exact),
    )


# ---- grids -------------------------------------------------------------------------------------


def _crossing(f: Callable[[Any], Any], sign: int, level: float, top: float) -> float | None:
    """|x| > 1 on the side ``sign`` where |f(x)| falls through ``level`` (a monotone tail)."""
    value = lambda m: abs(f(mp.mpf(sign) * mp.exp(m)))  # noqa: E731
    lo, hi = mp.mpf(0), mp.log(top)
    if not (value(lo) > level > value(hi)):
        return None
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if value(mid) > level else (lo, mid)
    return sign * float(mp.exp(lo))


def tail_thresholds(ref: Reference, dtype: type) -> list[float]:
    """Where the value or the derivative reaches the normal and the subnormal limits."""
    info = np.finfo(dtype)
    found = []
    for which in (0, 1):
        f = lambda x, w=which: ref(x)[w]  # noqa: E731
        for sign in (-1, 1):
            for level in (float(info.tiny), float(info.smallest_subnormal)):
                t = _crossing(f, sign, level, float(info.max))
                if t is not None:
                    found.append(t)
    return found


def _around(t: float, dtype: type, width: float, n: int) -> np.ndarray:
    near = t * (1 + np.linspace(-width, width, n))
    steps = np.asarray(t, dtype=dtype) + np.arange(-20, 21) * np.spacing(np.asarray(t, dtype))
    return np.concatenate([near.astype(dtype), steps.astype(dtype)])


def elementwise_grid(label: str, dtype: type) -> np.ndarray:
    info = np.finfo(dtype)
    small = np.logspace(math.log10(float(info.smallest_subnormal)), 0, 1500)
    big = np.logspace(math.log10(30), math.log10(float(info.max)) - 1e-9, 800)
    limits = [
        math.log(float(info.max)),
        math.log(float(info.tiny)),
        math.log(float(info.smallest_subnormal)),
    ]
    exp_edges = [s * t for t in limits for s in (1, -1, 0.5, -0.5)]
    parts = [np.linspace(-30, 30, 6001), small, -small, big, -big]
    parts += [_around(t, dtype, 0.02, 161) for t in exp_edges]
    parts += [_around(t, dtype, 0.02, 301) for t in tail_thresholds(ELEMENTWISE[label][2], dtype)]
    if label in DERIVATIVE_ROOTS:
        r = DERIVATIVE_ROOTS[label]
        parts.append(np.linspace(r - 0.3, r + 0.3, 601))
    x = np.unique(np.concatenate([p.astype(dtype) for p in parts]))
    return x[np.isfinite(x)]


# ---- rows --------------------------------------------------------------------------------------


def derivative_scales(label: str, x: np.ndarray, derivatives: list[Any]) -> list[Any]:
    if label not in DERIVATIVE_ROOTS:
        return derivatives
    r, ref = DERIVATIVE_ROOTS[label], ELEMENTWISE[label][2]
    edge = max(abs(ref(mp.mpf(r - ROOT_WINDOW))[1]), abs(ref(mp.mpf(r + ROOT_WINDOW))[1]))
    near = np.abs(x.astype(np.float64) - r) <= ROOT_WINDOW
    return [max(abs(d), edge) if n else d for d, n in zip(derivatives, near, strict=True)]


def elementwise_rows(label: str, dtype: type) -> list[Row]:
    name, params, ref = ELEMENTWISE[label]
    x = elementwise_grid(label, dtype)
    pairs = [ref(mp.mpf(float(v))) for v in x]
    values, derivatives = [p[0] for p in pairs], [p[1] for p in pairs]
    g: np.ndarray = np.random.default_rng(15).uniform(-2, 2, x.shape).astype(dtype)
    activation = get_activation(name)
    ours = evaluate(activation, x, activation.validate(params), ["value", "grad", "vjp"], g).arrays
    assert np.array_equal(ours["vjp"], g * ours["grad"], equal_nan=True), f"{label}: vjp != g * f'"
    torch.set_num_threads(1)
    theirs = torch_outputs(name, x, activation.validate(params), g)
    return [
        summarise(label, "value", dtype, ours["value"], theirs["value"], exact_arrays(values, values, dtype)),
        summarise(label, "grad", dtype, ours["grad"], theirs["grad"],
                  exact_arrays(derivatives, derivative_scales(label, x, derivatives), dtype)),
    ]  # fmt: skip


def all_rows() -> list[Row]:
    from tests.unit.activations_ulp_rows import along_dim_rows

    rows = []
    for dtype in DTYPES:
        for label in ELEMENTWISE:
            rows += elementwise_rows(label, dtype)
        rows += along_dim_rows(dtype)
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| function | output | dtype | points | ours max | ours p99.9 | torch max | torch p99.9 "
        "| zero/inf faults ours/torch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.output} | {r.dtype} | {r.points} | {r.ours_max:.3g} | "
            f"{r.ours_p999:.3g} | {r.torch_max:.3g} | {r.torch_p999:.3g} | "
            f"{r.ours_zeros}/{r.torch_zeros} |"
        )
    return "\n".join(lines)


def compact(rows: list[Row]) -> str:
    """One line per function: ours / torch max ULP, value and derivative, float32 and float64."""
    cells: dict[str, dict[tuple[str, str], Row]] = {}
    for r in rows:
        cells.setdefault(r.label, {})[(r.dtype, r.output)] = r
    lines = [
        "| function | float32 value | float32 f' / VJP | float64 value | float64 f' / VJP |",
        "|---|---|---|---|---|",
    ]
    for label, by in cells.items():
        parts = [
            f"{r.ours_max:.3g} / {r.torch_max:.3g}"
            for dtype in ("float32", "float64")
            for r in (by[(dtype, "value")], by.get((dtype, "grad")) or by[(dtype, "vjp")])
        ]
        lines.append(f"| {label} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    computed = all_rows()
    print(table(computed))
    print("\n" + compact(computed))
    bad = [f"{r.label} {r.output} {r.dtype}: {f}" for r in computed for f in r.failures]
    print("\n".join(bad) or "every row within the goal")
    sys.exit(1 if bad else 0)
