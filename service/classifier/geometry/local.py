"""At one point: the local affine map, the activation pattern and the region's inscribed ball."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.classifier.geometry.graph import Network
from service.classifier.geometry.ops import Array, Switch


@dataclass(frozen=True)
class Constraint:
    """One switching surface: a ReLU unit (z = 0) or a max-pool entry rivalling its winner."""

    layer: str
    kind: str
    unit: tuple[int, ...]  # index into the layer's shape (pool: the window's output position)
    rival: int | None  # pool: the window entry (row-major) that would take over
    distance: float
    normal: Array  # unit vector in input space along which the constraint is reached


@dataclass(frozen=True)
class Ball:
    radius: float
    ties: int
    nearest: Constraint | None  # None: no surface depends on the input (a constant network)


@dataclass(frozen=True)
class LocalMap:
    logits: Array  # (classes,)
    weights: Array  # (classes, C, H, W): d logits / d x
    bias: Array  # (classes,)
    max_abs_error: float  # max |weights . x + bias - logits|
    switches: list[Switch]  # with tangents along the unit directions of input space


def local_map(network: Network, x: Array) -> LocalMap:
    """The exact affine map of x's region (the Jacobian where the network is not piecewise
    linear): one pass along every input direction, plus, when piecewise linear, a homogeneous
    direction from 0 that carries the biases through the frozen pattern."""
    size = x.size
    extra = 1 if network.piecewise_linear else 0
    directions = np.zeros((1, size + extra, size))
    directions[0, :size] = np.eye(size)
    homogeneous = np.arange(size + extra) >= size
    trace = network.run(
        x[None], directions.reshape(1, size + extra, *x.shape), homogeneous=homogeneous
    )
    logits, tangent = trace.logits.value[0], trace.logits.tangent
    assert tangent is not None
    jacobian = tangent[0, :size].T  # (classes, size)
    linear = jacobian @ x.ravel()
    bias = tangent[0, size] if extra else logits - linear
    error = float(np.abs(linear + bias - logits).max())
    return LocalMap(logits, jacobian.reshape(-1, *x.shape), bias, error, trace.switches)


def pattern_bytes(switches: list[Switch], image: int = 0) -> bytes:
    """The pattern of one image: ReLU signs (bit-packed), then every pool window's winner."""
    parts = []
    for s in switches:
        state = s.state[image]
        parts.append(np.packbits(state).tobytes() if s.kind == "relu" else state.astype(np.uint8))
    return b"".join(bytes(p) for p in parts)


def pattern_id(switches: list[Switch], image: int = 0) -> str:
    """A stable 16-hex-digit id of the activation pattern (ReLU signs and max-pool argmaxes)."""
    return hashlib.blake2b(pattern_bytes(switches, image), digest_size=8).hexdigest()


def _relu_constraints(s: Switch, grads: Array) -> tuple[Array, Array, Array]:
    """Distances, tie flags and gradients (U, D) of a ReLU layer's units, at image 0."""
    z = s.value[0]
    norms = np.linalg.norm(grads, axis=1)
    live = norms > 0  # a unit whose value does not depend on x is no surface
    distance = np.where(live, np.abs(z) / np.where(live, norms, 1.0), np.inf)
    ties = live & (np.abs(z) <= s.tau[0])
    return distance, ties, grads


def _pool_constraints(s: Switch, grads: Array) -> tuple[Array, Array, Array]:
    """Distances and tie flags (U, k) of each entry against its window's winner, and the
    gradients (U, k, D) of winner minus entry."""
    h, winner = s.value[0], s.state[0]
    h_w = np.take_along_axis(h, winner[:, None], axis=1)
    g_w = np.take_along_axis(grads, winner[:, None, None], axis=1)
    diff_grads = g_w - grads
    norms = np.linalg.norm(diff_grads, axis=2)
    live = norms > 0
    gap = h_w - h
    distance = np.where(live, gap / np.where(live, norms, 1.0), np.inf)
    ties = live & (gap <= s.tau[0])
    return distance, ties, diff_grads


def region_ball(switches: list[Switch], directions: int) -> Ball:
    """The exact L2 distance from x to its region's boundary: the nearest of the hyperplanes
    z_j = 0 and h_w = h_j, each |value| / |gradient| (the tangents must be along the unit
    directions of input space, as local_map computes them: the first ``directions`` ones)."""
    best: Constraint | None = None
    ties = 0
    for s in switches:
        assert s.tangent is not None
        if s.kind == "relu":
            grads = s.tangent[0, :directions].T  # (U, D)
            distance, tied, normals = _relu_constraints(s, grads)
        else:
            grads = np.moveaxis(s.tangent[0, :directions], 0, -1)  # (U, k, D)
            distance, tied, normals = _pool_constraints(s, grads)
        ties += int(tied.sum())
        distance = np.where(tied, 0.0, distance)
        flat = int(np.argmin(distance))
        if best is not None and not distance.flat[flat] < best.distance:
            continue
        best = _constraint(s, flat, float(distance.flat[flat]), normals)
    if best is None or not np.isfinite(best.distance):
        return Ball(float("inf"), ties, None)
    return Ball(best.distance, ties, best)


def _constraint(s: Switch, flat: int, distance: float, normals: Array) -> Constraint:
    if s.kind == "relu":
        g = normals[flat]
        sign = -1.0 if s.value[0, flat] > 0 else 1.0  # towards z = 0
        unit, rival = np.unravel_index(flat, s.shape), None
    else:
        window, rival = divmod(flat, s.value.shape[2])
        g, sign = normals[window, rival], -1.0  # shrinking h_w - h_j
        unit = np.unravel_index(window, s.shape)
    normal = sign * g / np.linalg.norm(g)
    return Constraint(s.name, s.kind, tuple(int(i) for i in unit), rival, distance, normal)


def layer_summary(s: Switch, image: int = 0, units: bool = False) -> dict[str, Any]:
    """A switching layer's name, size, how many of it are active (ReLU: on; pool: windows with
    a positive maximum) and, with ``units``, its map shaped like the layer."""
    state = s.state[image]
    if s.kind == "relu":
        active = int(state.sum())
        layer_map = state.reshape(s.shape).astype(np.uint8)
    else:
        picked = np.take_along_axis(s.value[image], state[:, None], axis=1)[:, 0]
        active = int((picked > 0).sum())
        layer_map = state.reshape(s.shape)
    summary: dict[str, Any] = {
        "name": s.name,
        "kind": s.kind,
        "units": int(state.size),
        "active": active,
    }
    if units:
        summary["map"] = layer_map.tolist()
    return summary
