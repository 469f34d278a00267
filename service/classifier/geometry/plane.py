"""/regions/plane without a transport: the activation regions over the plane of three images,
sampled on a grid (not exact), drawn as a PNG with the decision boundary."""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image, ImageDraw

from service.classifier.geometry.graph import Network
from service.classifier.geometry.ops import Array
from service.classifier.geometry.walk import digest, pattern_rows
from service.errors import DeadlineExceeded

#: Points evaluated per pass.
CHUNK = 512
#: The PNG's side in pixels (about: each grid cell is a whole number of pixels).
SIDE_PX = 512
EDGE, BOUNDARY = (90, 90, 90), (0, 0, 0)


def sample(
    network: Network,
    a: Array,
    b: Array,
    c: Array,
    *,
    grid: int,
    span: float,
    timeout_s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Region index and label (grid, grid) at x(u, v) = a + u (b - a) + v (c - a), u and v in
    [0, span] (rows: v, columns: u)."""
    deadline = time.monotonic() + timeout_s
    v, u = np.meshgrid(*[np.linspace(0, span, grid)] * 2, indexing="ij")
    points = a + u.reshape(-1, 1, 1, 1) * (b - a) + v.reshape(-1, 1, 1, 1) * (c - a)
    digests: list[bytes] = []
    labels = []
    for start in range(0, len(points), CHUNK):
        trace = network.run(points[start : start + CHUNK])
        digests += [digest(row) for row in pattern_rows(trace.switches)]
        labels.append(trace.logits.value.argmax(axis=1))
        if start + CHUNK < len(points) and time.monotonic() > deadline:
            raise DeadlineExceeded(
                f"sampling the plane passed the deadline of {timeout_s * 1000:g} ms "
                "(geometry_timeout_ms); ask for a smaller grid"
            )
    index: dict[bytes, int] = {}
    regions = np.array([index.setdefault(d, len(index)) for d in digests])
    return regions.reshape(grid, grid), np.concatenate(labels).reshape(grid, grid)


def _changes(grid: np.ndarray) -> np.ndarray:
    """Cells whose right or lower neighbour differs."""
    out = np.zeros(grid.shape, dtype=bool)
    out[:, :-1] |= grid[:, 1:] != grid[:, :-1]
    out[:-1, :] |= grid[1:, :] != grid[:-1, :]
    return out


def render(regions: np.ndarray, labels: np.ndarray) -> bytes:
    """Each region a pastel colour, region edges grey, the decision boundary black; a at the
    top left, b at the top right, c at the bottom left."""
    palette = np.random.default_rng(0).integers(140, 256, size=(int(regions.max()) + 1, 3))
    rgb = palette[regions].astype(np.uint8)
    rgb[_changes(regions)] = EDGE
    rgb[_changes(labels)] = BOUNDARY
    scale = max(1, SIDE_PX // len(regions))
    big = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    image = Image.fromarray(big, "RGB")
    draw = ImageDraw.Draw(image)
    side = big.shape[0] - 1
    for name, (x, y) in {"a": (0, 0), "b": (side, 0), "c": (0, side)}.items():
        draw.ellipse((x - 7, y - 7, x + 7, y + 7), fill=(255, 255, 255), outline=(0, 0, 0))
        draw.text((min(x + 9, side - 14), min(y + 6, side - 16)), name, fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
