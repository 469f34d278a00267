"""/explain without a transport: one normalised image -> its local map, pattern and region."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from service.classifier.geometry.graph import Network
from service.classifier.geometry.local import (
    LocalMap,
    layer_summary,
    local_map,
    pattern_id,
    region_ball,
)
from service.classifier.geometry.ops import Array
from service.metadata import ModelMetadata

#: Screen pixels per input pixel in the saliency PNG.
PNG_SCALE = 32


def input_space(meta: ModelMetadata) -> str:
    """Words for the space the weights act on: the model's input after normalisation."""
    low, high = meta.input_range
    shape = "x".join(map(str, meta.input_shape))
    return (
        f"normalised input {shape}: x = ((raw - {low:g}) / {high - low:g} - {meta.mean:g}) "
        f"/ {meta.std:g}, the float32 values the model sees, held in float64"
    )


def explain(network: Network, meta: ModelMetadata, x: Array, *, units: bool) -> dict[str, Any]:
    """The answer of /explain for one image ``x`` (C, H, W) in the model's input space."""
    local = local_map(network, x)
    index = int(np.argmax(local.logits))
    answer: dict[str, Any] = {
        "label": meta.labels[index],
        "index": index,
        "logits": local.logits.tolist(),
        "piecewise_linear": network.piecewise_linear,
        "linear_map": _linear_map(network, meta, local),
        "pattern": None,
        "region": None,
    }
    if network.piecewise_linear:
        answer["pattern"] = _pattern(local, units)
        answer["region"] = _region(local, x.size)
    return answer


def _linear_map(network: Network, meta: ModelMetadata, local: LocalMap) -> dict[str, Any]:
    weights = local.weights[:, 0] if local.weights.shape[1] == 1 else local.weights
    if network.piecewise_linear:
        kind, note = (
            "region",
            "the exact affine map of the activation region holding x: "
            "logits == weights . x + bias on the whole region",
        )
    else:
        kind, note = (
            "jacobian",
            f"the model is not piecewise linear ({', '.join(network.smooth_ops)}): weights are "
            "the Jacobian at x, the local linearisation, not a region's map; "
            "bias = logits - weights . x",
        )
    return {
        "kind": kind,
        "note": note,
        "space": input_space(meta),
        "weights": weights.tolist(),
        "bias": local.bias.tolist(),
        "max_abs_error": local.max_abs_error,
    }


def _pattern(local: LocalMap, units: bool) -> dict[str, Any]:
    return {
        "id": pattern_id(local.switches),
        "layers": [layer_summary(s, units=units) for s in local.switches],
    }


def _region(local: LocalMap, size: int) -> dict[str, Any]:
    ball = region_ball(local.switches, size)
    nearest = None
    if ball.nearest is not None:
        c = ball.nearest
        nearest = {"layer": c.layer, "kind": c.kind, "unit": list(c.unit), "rival": c.rival}
    return {
        "radius": ball.radius if np.isfinite(ball.radius) else None,
        "ties": ball.ties,
        "nearest": nearest,
    }


def saliency_png(network: Network, x: Array) -> bytes:
    """A PNG of the predicted class's weights: red raises its logit, blue lowers it, white 0."""
    local = local_map(network, x)
    weights = local.weights[int(np.argmax(local.logits))].sum(axis=0)  # (H, W)
    scale = float(np.abs(weights).max()) or 1.0
    w = weights / scale
    red = np.where(w < 0, 1 + w, 1.0)
    blue = np.where(w > 0, 1 - w, 1.0)
    green = 1 - np.abs(w)
    rgb = (np.stack([red, green, blue], axis=-1) * 255).round().astype(np.uint8)
    big = np.repeat(np.repeat(rgb, PNG_SCALE, axis=0), PNG_SCALE, axis=1)
    out = io.BytesIO()
    Image.fromarray(big, "RGB").save(out, format="PNG", optimize=True)
    return out.getvalue()
