"""Client arrays and image files -> the model's (N, C, H, W) float32 input, checked first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from service.codecs.images import check_request_pixels, image_to_input
from service.errors import InvalidInput, TooLarge
from service.metadata import ModelMetadata


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
    the metadata unless ``normalized``. ``finite``: the caller vouches that every value is a
    finite float32 (JSON arrays are checked as they are built), so the scan is skipped.
    """
    if raw.dtype.kind not in "fiu":
        raise InvalidInput(f"inputs must be numbers, got dtype {raw.dtype}")
    if raw.size == 0:
        raise InvalidInput(f"inputs hold no images (shape {list(raw.shape)}); send at least one")
    batch = _as_batch(raw, meta.input_shape)
    if batch.shape[0] > max_images:
        raise TooLarge(f"{batch.shape[0]} images in one request exceeds the limit of {max_images}")
    if batch.dtype.itemsize <= 4:
        out = _to_input(batch, meta, normalized)
    else:  # float64 beyond float32's range becomes inf, refused below
        with np.errstate(over="ignore", invalid="ignore"):
            out = _to_input(batch, meta, normalized)
    if not finite and not np.isfinite(out.sum()) and not np.isfinite(out).all():
        raise InvalidInput("inputs contain NaN or Infinity; every value must be finite")
    return out


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
    """Image files (name, bytes) -> the model's input: grayscale, resized like the training data."""
    channels, height, width = meta.input_shape
    if channels != 1:
        raise InvalidInput("this model takes multi-channel input; send a JSON or .npy array")
    if not files:
        raise InvalidInput("the multipart body holds no files; attach images as 'files'")
    if len(files) > max_images:
        raise TooLarge(f"more than {max_images} images in one request (max_images)")
    check_request_pixels(files, max_pixels=max_pixels, max_request_pixels=max_request_pixels)
    images = [
        image_to_input(
            data,
            name=name,
            size=(height, width),
            value_range=meta.input_range,
            invert=invert,
            max_pixels=max_pixels,
        )
        for name, data in files
    ]
    return prepare(np.stack(images), meta, max_images=max_images)
