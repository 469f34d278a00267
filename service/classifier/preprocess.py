"""Client arrays and image files -> the model's (N, C, H, W) float32 input, checked first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from PIL import Image

from service.classifier import normalize
from service.classifier.limits import Limits
from service.codecs import Body, json_arrays, npy
from service.codecs.images import check_request_pixels, decode_grayscale
from service.errors import InvalidInput, TooLarge
from service.metadata import ModelMetadata

FLOAT32 = np.dtype(np.float32)
#: The dtypes a .npy body may hold.
NPY_DTYPES = (FLOAT32, np.dtype(np.float64), np.dtype(np.uint8))

#: The digits data set's recipe: each digit was drawn into a bitmap 4x the model's side
#: (32x32 for 8x8) and each model pixel counts the ink of one 4x4 block.
BLOCK = 4
#: Below this fraction of the paper-to-ink contrast a pixel is paper (JPEG noise, uneven light).
INK_FLOOR = 0.25
#: Less contrast than this (on 0..255) between the paper and the brightest ink: no ink at all.
MIN_CONTRAST = 16.0


def prepare(
    raw: np.ndarray[Any, Any],
    meta: ModelMetadata,
    *,
    max_images: int,
    normalized: bool = False,
    finite: bool = False,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Check a client array of images and return the model's (N, C, H, W) float32 input.

    Accepts one image (H, W), a batch (N, H, W) or (N, C, H, W), in the raw value range of
    the metadata (checked) unless ``normalized``. ``finite``: the caller vouches that every
    value is a finite float32 (JSON arrays are checked as they are built), so the scan of
    normalised inputs is skipped.
    """
    if raw.dtype.kind not in "fiu":
        raise InvalidInput(f"inputs must be numbers, got dtype {raw.dtype}")
    if raw.size == 0:
        raise InvalidInput(f"inputs hold no images (shape {list(raw.shape)}); send at least one")
    shape = meta.input_shape
    batch = raw if raw.ndim == 4 and raw.shape[1:] == shape else _as_batch(raw, shape)
    if batch.shape[0] > max_images:
        raise TooLarge(f"{batch.shape[0]} images in one request exceeds the limit of {max_images}")
    if not normalized:
        out = normalize.checked(batch, meta)  # one compiled pass: the usual float32 request
        if out is not None:
            return out
        _check_range(batch, meta.input_range)
    if batch.dtype.itemsize <= 4:
        out = np.ascontiguousarray(batch, FLOAT32) if normalized else meta.normalize(batch)
    else:  # float64 beyond float32's range becomes inf, refused below
        with np.errstate(over="ignore", invalid="ignore"):
            out = _to_input(batch, meta, normalized)
    if normalized and not finite and not np.isfinite(out.sum()) and not np.isfinite(out).all():
        raise InvalidInput(_NOT_FINITE)
    return out


_NOT_FINITE = "inputs contain NaN or Infinity; every value must be finite"


def _check_range(batch: np.ndarray[Any, Any], value_range: tuple[float, float]) -> None:
    """Raw values must lie in the model's declared range: 0..255 sent to a 0..16 model would
    otherwise get a confident, meaningless answer. NaN and infinities fail here too."""
    low, high = value_range
    flat = batch.reshape(-1)  # the ufuncs' 1-D reduce: the cheapest call (per-request cost)
    smallest, largest = np.minimum.reduce(flat), np.maximum.reduce(flat)
    if low <= smallest and largest <= high:
        return
    if batch.dtype.kind == "f" and not np.isfinite(batch).all():
        raise InvalidInput(_NOT_FINITE)
    raise InvalidInput(
        f"inputs hold values from {smallest:g} to {largest:g}, outside the model's raw range "
        f"{low:g}..{high:g} (GET /model: input_range); scale them into {low:g}..{high:g}, or "
        "send values already normalised with normalized=true"
    )


def _to_input(
    batch: np.ndarray[Any, Any], meta: ModelMetadata, normalized: bool
) -> np.ndarray[Any, np.dtype[np.float32]]:
    if normalized:
        return np.ascontiguousarray(batch, dtype=np.float32)
    return meta.normalize(batch)


def _as_batch(raw: np.ndarray[Any, Any], shape: tuple[int, int, int]) -> np.ndarray[Any, Any]:
    if raw.ndim == 2:
        raw = raw[None, None]
    elif raw.ndim == 3 and shape[0] == 1:
        raw = raw[:, None]
    elif raw.ndim != 4:
        raise InvalidInput(
            f"inputs have rank {raw.ndim} (shape {list(raw.shape)}); expected {_layouts(shape)}"
        )
    if raw.shape[1:] != shape:
        raise InvalidInput(
            f"inputs have image shape {list(raw.shape[1:])}; expected {_layouts(shape)}"
        )
    return raw


def _layouts(shape: tuple[int, int, int]) -> str:
    channels, height, width = shape
    return f"(H, W), (N, H, W) or (N, {channels}, H, W) with H={height}, W={width}"


def images_to_batch(
    files: Sequence[tuple[str, bytes]],
    meta: ModelMetadata,
    *,
    invert: bool | None,
    max_images: int,
    max_pixels: int,
    max_request_pixels: int,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Image files (name, bytes) -> the model's input: grayscale, prepared like the training data."""
    channels, height, width = meta.input_shape
    if channels != 1:
        raise InvalidInput("this model takes multi-channel input; send a JSON or .npy array")
    if not files:
        raise InvalidInput("the multipart body holds no files; attach images as 'files'")
    if len(files) > max_images:
        raise TooLarge(f"more than {max_images} images in one request (max_images)")
    check_request_pixels(files, max_pixels=max_pixels, max_request_pixels=max_request_pixels)
    images = [
        prepare_image(
            decode_grayscale(data, name=name, max_pixels=max_pixels),
            (height, width),
            meta.input_range,
            invert=invert,
        )
        for name, data in files
    ]
    return prepare(np.stack(images), meta, max_images=max_images)


def prepare_image(
    gray: Image.Image | np.ndarray[Any, Any],
    size: tuple[int, int],
    value_range: tuple[float, float],
    *,
    invert: bool | None,
    centre: Literal["box", "mass"] = "box",
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A grayscale image (0..255) made like the training digits: one (height, width) image in
    ``value_range``, light ink on a dark background. Serving and training both use this.

    ``invert=None`` inverts dark ink on light paper (judged by the border). An image already
    at the model's size is taken as prepared; any other is cropped to its ink, scaled to fit a
    box ``BLOCK`` times the model's size keeping its aspect ratio, centred (by its bounding
    box, as the digits were; ``centre="mass"`` by its centre of mass), averaged over
    ``BLOCK`` x ``BLOCK`` blocks and stretched so that its darkest block is full ink (as in
    98 % of the digits).
    """
    pixels = np.asarray(gray, dtype=np.float32)
    if invert is None:
        invert = dark_ink(pixels)
    if invert:
        pixels = 255.0 - pixels
    if pixels.shape == size:
        unit = pixels / np.float32(255.0)
    else:
        unit = _digitize(_ink(pixels), size, centre)
    low, high = value_range
    return (low + unit * np.float32(high - low)).astype(np.float32)


def dark_ink(pixels: np.ndarray[Any, Any]) -> bool:
    """Dark ink on light paper? The border shows mostly paper: yes when its median is nearer
    the brightest pixel than the darkest."""
    return _paper(pixels) > (float(pixels.min()) + float(pixels.max())) / 2


def _paper(pixels: np.ndarray[Any, Any]) -> float:
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return float(np.median(border))


def _ink(pixels: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Light-on-dark pixels -> ink in [0, 1]: the paper level (from the border) and the faint
    noise above it 0, the brightest ink 1."""
    paper, peak = _paper(pixels), float(pixels.max())
    if peak - paper < MIN_CONTRAST:
        return np.zeros_like(pixels)
    ink = (pixels - np.float32(paper)) / np.float32(peak - paper)
    ink -= INK_FLOOR
    ink /= 1 - INK_FLOOR
    return np.clip(ink, 0.0, 1.0, out=ink)


def _digitize(
    ink: np.ndarray[Any, Any], size: tuple[int, int], centre: Literal["box", "mass"]
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Crop to the ink, scale into the BLOCK x size box, centre, block-average, stretch."""
    height, width = size
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return np.zeros(size, dtype=np.float32)
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    box_h, box_w = BLOCK * height, BLOCK * width
    scale = min(box_h / crop.shape[0], box_w / crop.shape[1])
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    shrink = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    scaled = np.asarray(Image.fromarray(crop).resize((w, h), shrink), dtype=np.float32)
    top, left = (box_h - h) // 2, (box_w - w) // 2
    if centre == "mass":
        top, left = _mass_offsets(scaled, box_h, box_w)
    canvas = np.zeros((box_h, box_w), dtype=np.float32)
    canvas[top : top + h, left : left + w] = scaled
    blocks: np.ndarray[Any, np.dtype[np.float32]]
    blocks = canvas.reshape(height, BLOCK, width, BLOCK).mean(axis=(1, 3), dtype=np.float32)
    blocks /= np.float32(max(float(blocks.max()), 1e-12))
    return blocks


def _mass_offsets(scaled: np.ndarray[Any, Any], box_h: int, box_w: int) -> tuple[int, int]:
    """Where to put ``scaled`` so that its centre of mass is the box's centre, kept inside."""
    total = float(scaled.sum()) or 1.0
    ys, xs = np.indices(scaled.shape)
    cy, cx = float((ys * scaled).sum()) / total, float((xs * scaled).sum()) / total
    h, w = scaled.shape
    top = min(max(round((box_h - 1) / 2 - cy), 0), box_h - h)
    left = min(max(round((box_w - 1) / 2 - cx), 0), box_w - w)
    return top, left


def batch_from_json(
    inputs: Any, body: Body, meta: ModelMetadata, limits: Limits, *, normalized: bool
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A JSON body's nested lists of images -> the model's normalised input (N, C, H, W);
    ``body`` is the JSON text they came from. Every endpoint taking JSON images uses this."""
    limit = limits.max_images
    if (
        isinstance(inputs, list)
        and len(inputs) > limit
        and len(json_arrays.presumed_shape(inputs)) >= 3
    ):
        raise TooLarge(f"{len(inputs)} images exceeds the limit of {limit}")
    raw = json_arrays.array_from_json(
        inputs,
        dtype=FLOAT32,
        max_elements=limits.max_elements,
        name="inputs",
        may_hold_booleans=json_arrays.json_may_hold_booleans(body),
    )
    return prepare(raw, meta, max_images=limit, normalized=normalized, finite=True)


def batch_from_npy(
    body: Body, meta: ModelMetadata, limits: Limits, *, normalized: bool
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The bytes of numpy.save(f, images) -> the model's normalised input (N, C, H, W)."""
    raw = npy.load_npy(body, max_elements=limits.max_elements, allowed_dtypes=NPY_DTYPES)
    return prepare(raw, meta, max_images=limits.max_images, normalized=normalized)
