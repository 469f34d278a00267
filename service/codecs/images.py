"""Image decoding and scaling, shared by training (folder data) and serving (uploads)."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.errors import InvalidInput, TooLarge, UnsupportedMediaType

#: Refuse images with more pixels than this before decoding them (decompression bombs).
DEFAULT_MAX_PIXELS = 4096 * 4096
#: Integer modes of 16-bit grayscale files (PNG, TIFF), scaled onto 0..255 like 8-bit ones.
_WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


def decode_grayscale(
    data: bytes, *, name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode PNG/JPEG/BMP/GIF/WebP/... bytes into a single-channel float ("F") image in 0..255.

    The header is read first; an image whose declared size exceeds ``max_pixels`` is refused
    before its pixel data is decompressed.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            width, height = opened.size
            if width * height > max_pixels:
                raise TooLarge(
                    f"{name}: {width}x{height} pixels exceeds the limit of {max_pixels} pixels"
                )
            opened.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge(
            f"{name}: the declared image size exceeds the limit of {max_pixels} pixels "
            "(refused unread as a decompression bomb)"
        ) from None
    except UnidentifiedImageError:
        raise UnsupportedMediaType(
            f"{name}: not a readable image (PNG, JPEG, BMP, GIF, WebP, TIFF are accepted)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"{name}: the image is truncated or corrupt ({exc})") from None
    image: Image.Image = opened
    if image.mode in _WIDE_MODES:
        # 16-bit grayscale: Pillow's convert("L") clips at 255 instead of scaling 0..65535.
        return Image.fromarray(np.asarray(image, dtype=np.float32) / np.float32(257.0))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite transparent pixels onto white paper so that they read as background.
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    return image.convert("L").convert("F")


def to_model_scale(
    image: Image.Image, size: tuple[int, int], value_range: tuple[float, float], invert: bool | None
) -> np.ndarray:
    """Resize a grayscale image to (height, width) and map 0..255 onto the model's raw range.

    Resizing uses box (area) averaging, which is how the digits data set itself was made from
    32x32 bitmaps. ``invert=None`` (auto) inverts dark ink on light paper, judged by the border,
    because the training data is light ink on a dark background.
    """
    height, width = size
    pixels = np.asarray(image.resize((width, height), Image.Resampling.BOX), dtype=np.float32)
    if invert is None:
        invert = bool(_border_mean(np.asarray(image, dtype=np.float32)) > 127.5)
    if invert:
        pixels = 255.0 - pixels
    low, high = value_range
    return (low + pixels * np.float32((high - low) / 255.0)).astype(np.float32)


def _border_mean(pixels: np.ndarray) -> float:
    top, bottom = pixels[0, :], pixels[-1, :]
    left, right = pixels[:, 0], pixels[:, -1]
    return float(np.concatenate([top, bottom, left, right]).mean())


def image_to_input(
    data: bytes,
    *,
    name: str,
    size: tuple[int, int],
    value_range: tuple[float, float],
    invert: bool | None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """An uploaded image file as one (height, width) model image in ``value_range``."""
    if not data:
        raise InvalidInput(f"{name}: the file is empty")
    gray = decode_grayscale(data, name=name, max_pixels=max_pixels)
    return to_model_scale(gray, size, value_range, invert)
