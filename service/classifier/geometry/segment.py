"""/regions without a transport: two normalised images -> the exact walk between them."""

from __future__ import annotations

from typing import Any

import numpy as np

from service.classifier.geometry import walk
from service.classifier.geometry.graph import Network
from service.classifier.geometry.ops import Array
from service.metadata import ModelMetadata


def regions(
    network: Network,
    meta: ModelMetadata,
    start: Array,
    end: Array,
    *,
    max_breakpoints: int,
    timeout_s: float,
    logits: bool = False,
) -> dict[str, Any]:
    """The answer of /regions along x(t) = start + t (end - start), t in [0, 1]; with
    ``logits``, the logits at every knot as well."""
    found = walk.walk(network, start, end, max_breakpoints=max_breakpoints, timeout_s=timeout_s)
    linear = walk.linear_piece_starts(found)
    changes = walk.decisions(found)
    answer = {
        "breakpoints": found.starts[1:].tolist(),
        "activation_regions": len(found.starts),
        "linear_pieces": len(linear),
        "pieces": _pieces(found.starts[linear], changes, meta.labels),
        "decision_changes": [t for t, _ in changes[1:]],
        "max_abs_error": found.max_abs_error,
        "passes": found.passes,
    }
    if logits:
        answer["knots"] = _knots(found, linear, changes)
    return answer


def _knots(
    found: walk.Regions, linear: Array, changes: list[tuple[float, int]]
) -> dict[str, list[Any]]:
    """t at every linear piece's ends and decision change, and the logits there: each from
    the affine map of the region holding it (at t = 1, of the last region)."""
    t = np.unique(np.concatenate([found.starts[linear], [t for t, _ in changes], [1.0]]))
    region = np.searchsorted(found.starts, t, side="right") - 1
    values = found.logits[region] + (t - found.starts[region])[:, None] * found.slopes[region]
    return {"t": t.tolist(), "logits": values.tolist()}


def _pieces(
    linear_starts: Array, changes: list[tuple[float, int]], labels: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The linear pieces, each cut where the argmax changes: one label per piece."""
    cuts = sorted(set(linear_starts.tolist()) | {t for t, _ in changes})
    change_t = np.array([t for t, _ in changes])
    ends = [*cuts[1:], 1.0]
    pieces = []
    for t0, t1 in zip(cuts, ends, strict=True):
        label = changes[int(np.searchsorted(change_t, t0, side="right")) - 1][1]
        pieces.append({"t0": t0, "t1": t1, "label": labels[label]})
    return pieces
