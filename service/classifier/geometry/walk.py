"""The exact 1D walk: activation regions, linear pieces and decisions along a segment.

Along x(t) = start + t (end - start) every pre-activation and pooled entry is affine in t until
the first switch, so the next breakpoint is the smallest closed-form crossing time (ReLU:
-z / dz; pool: (h_w - h_j) / (dh_j - dh_w)). [0, 1] is split into lanes walked side by side,
one batched float64 pass per step of every lane (see /work/shared/REGIONS.md).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from service.classifier.geometry.graph import Network
from service.classifier.geometry.ops import Array, Switch
from service.errors import DeadlineExceeded, InvalidInput

#: Lanes walked side by side: fewer Python-level passes, each a little larger.
LANES = 64
#: Slopes (per unit t) this close, relative to their size, are the same linear piece.
SLOPE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Regions:
    """The walk's result: activation regions in order, each with its pattern and affine logits."""

    starts: Array  # (R,) t where each region begins; starts[0] == 0
    digests: list[bytes]  # (R,) pattern digest of each region
    logits: Array  # (R, classes) at each start
    slopes: Array  # (R, classes) d logits / dt on each region
    passes: int
    #: The largest |logits(t') - (logits(t) + (t' - t) slope(t))| from each step t of the walk
    #: to the next one t' (and from the last to t = 1): each piece's affine prediction checked
    #: at its far end against an independent evaluation there, at no extra cost.
    max_abs_error: float

    @property
    def ends(self) -> Array:
        return np.append(self.starts[1:], 1.0)


def pattern_rows(switches: list[Switch]) -> np.ndarray:
    """One row of bytes per image: ReLU signs bit-packed, then every pool window's winner."""
    parts = [
        np.packbits(s.state, axis=1) if s.kind == "relu" else s.state.astype(np.uint8)
        for s in switches
    ]
    return np.concatenate(parts, axis=1)


def digest(row: np.ndarray) -> bytes:
    return hashlib.blake2b(row.tobytes(), digest_size=16).digest()


def next_event(switches: list[Switch]) -> Array:
    """Per image, the smallest t-step > 0 to the next switch along tangent 0 (inf if none)."""
    steps = np.full(len(switches[0].value), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for s in switches:
            assert s.tangent is not None
            slope = s.tangent[:, 0]
            if s.kind == "relu":
                z = np.where(np.abs(s.value) <= s.tau[:, None], 0.0, s.value)
                moving = np.where(s.state, slope < 0, slope > 0)
                step = np.where(moving, -z / slope, np.inf)
            else:
                h_w = np.take_along_axis(s.value, s.state[..., None], axis=2)
                dh_w = np.take_along_axis(slope, s.state[..., None], axis=2)
                rising = slope > dh_w
                step = np.where(rising, (h_w - s.value) / (slope - dh_w), np.inf)
            steps = np.minimum(steps, np.maximum(step.reshape(len(steps), -1), 0.0).min(axis=1))
    return steps


def walk(
    network: Network,
    start: Array,
    end: Array,
    *,
    max_breakpoints: int,
    timeout_s: float,
    lanes: int = LANES,
) -> Regions:
    """Every activation region along the segment; InvalidInput past ``max_breakpoints``,
    DeadlineExceeded past ``timeout_s`` (checked between passes)."""
    deadline = time.monotonic() + timeout_s
    direction = end - start
    bounds = np.linspace(0.0, 1.0, lanes + 1)
    t, stop = bounds[:-1].copy(), bounds[1:]
    active = np.arange(lanes)
    found: list[tuple[Array, list[bytes], Array, Array]] = []
    events = passes = 0
    while active.size:
        at = t[active]
        x = start + at[:, None, None, None] * direction
        tangent = np.broadcast_to(direction, (len(at), 1, *direction.shape))
        trace = network.run(x, np.ascontiguousarray(tangent), mode="forward")
        assert trace.logits.tangent is not None
        rows = pattern_rows(trace.switches)
        found.append(
            (at, [digest(r) for r in rows], trace.logits.value, trace.logits.tangent[:, 0])
        )
        after = np.maximum(at + next_event(trace.switches), np.nextafter(at, np.inf))
        done = after >= stop[active]
        t[active] = after
        events += int((~done).sum())
        passes += 1
        if events > max_breakpoints:
            raise InvalidInput(
                f"the segment crosses more than {max_breakpoints} activation-pattern boundaries "
                "(geometry_max_breakpoints); choose closer images or raise "
                "RELU_SERVE_GEOMETRY_MAX_BREAKPOINTS"
            )
        active = active[~done]
        if active.size and time.monotonic() > deadline:
            raise DeadlineExceeded(
                f"the walk passed the deadline of {timeout_s * 1000:g} ms (geometry_timeout_ms) "
                f"after {events} breakpoints; choose closer images or raise "
                "RELU_SERVE_GEOMETRY_TIMEOUT_MS"
            )
    at_end = network.run(end[None]).logits.value
    return _merge(found, passes, at_end[0])


def _merge(
    found: list[tuple[Array, list[bytes], Array, Array]], passes: int, at_end: Array
) -> Regions:
    """Sort every step by t, check each step's affine prediction at the next step, and join
    neighbours with one pattern (lane starts, say)."""
    starts = np.concatenate([f[0] for f in found])
    digests = [d for f in found for d in f[1]]
    logits = np.concatenate([f[2] for f in found])
    slopes = np.concatenate([f[3] for f in found])
    order = np.argsort(starts, kind="stable")
    t, f, g = starts[order], logits[order], slopes[order]
    predicted = f + (np.append(t[1:], 1.0) - t)[:, None] * g
    error = float(np.abs(predicted - np.vstack([f[1:], at_end])).max())
    keep = [int(order[0])]
    for i in order[1:].tolist():
        if digests[i] != digests[keep[-1]]:
            keep.append(i)
    return Regions(
        starts[keep], [digests[i] for i in keep], logits[keep], slopes[keep], passes, error
    )


def linear_piece_starts(regions: Regions) -> Array:
    """Indices of the regions that start a maximal piece on which the logits are affine in t."""
    g = regions.slopes
    scale = np.maximum(np.abs(g[1:]).max(axis=1), np.abs(g[:-1]).max(axis=1))
    bends = np.abs(g[1:] - g[:-1]).max(axis=1) > SLOPE_TOLERANCE * np.maximum(scale, 1e-300)
    return np.concatenate([[0], 1 + np.flatnonzero(bends)])


def _label_at(f: Array, g: Array) -> int:
    """The argmax on (t, t + eps): the largest value, ties (within rounding) by slope."""
    top = f.max()
    tied = f >= top - 1e-12 * max(1.0, abs(top))
    return int(np.where(tied, g, -np.inf).argmax())


def decisions(regions: Regions) -> list[tuple[float, int]]:
    """(t, label) where the argmax starts, then every t where it changes, exactly."""
    changes: list[tuple[float, int]] = []
    for f0, g, t0, t1 in zip(
        regions.logits, regions.slopes, regions.starts, regions.ends, strict=True
    ):
        label = _label_at(f0, g)
        if not changes or changes[-1][1] != label:
            changes.append((float(t0), label))
        t = float(t0)
        while True:
            f = f0 + (t - t0) * g
            with np.errstate(divide="ignore", invalid="ignore"):
                step = np.where(g > g[label], (f[label] - f) / (g - g[label]), np.inf)
            step[label] = np.inf
            nxt = int(step.argmin())
            if not t + step[nxt] < t1:
                break
            t += max(float(step[nxt]), 0.0)
            label = nxt
            changes.append((t, label))
    return changes


def affine_error(network: Network, start: Array, end: Array, regions: Regions) -> float:
    """The largest |logits(mid) - affine prediction| over every region's midpoint: an
    independent check (one more pass over every region) for the tests and the bench."""
    mids = (regions.starts + regions.ends) / 2
    predicted = regions.logits + (mids - regions.starts)[:, None] * regions.slopes
    points = start + mids[:, None, None, None] * (end - start)
    return float(np.abs(network.logits(points) - predicted).max())
