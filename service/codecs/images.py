"""Image decoding and scaling, shared by training (folder data) and serving (uploads)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.errors import InvalidInput, ServiceError, TooLarge, UnsupportedMediaType

#: Refuse images with more pixels than this before decoding them (decompression bombs).
DEFAULT_MAX_PIXELS = 4096 * 4096
#: The formats Pillow may open (its other ~40 plugins, EPS through Ghostscript among them, stay
#: closed to clients).
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
_ACCEPTED = "PNG, JPEG, BMP, GIF, WebP and TIFF are accepted"
#: Integer modes of 16-bit grayscale files (PNG, TIFF), scaled onto 0..255 like 8-bit ones.
_WIDE_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
#: Modes converted to gray as they are; transparent ones are first laid on white paper.
_PLAIN_MODES = frozenset({"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def open_image(data: bytes, *, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The image's header read (no pixel data yet): an accepted format, within ``max_pixels``."""
    if not data:
        raise InvalidInput(f"{name}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge(
            f"{name}: the declared image size exceeds the limit of {max_pixels} pixels "
            "(refused unread as a decompression bomb)"
        ) from None
    except UnidentifiedImageError:
        raise UnsupportedMediaType(f"{name}: not a readable image ({_ACCEPTED})") from None
    except Exception:  # a header parser of untrusted bytes: any failure is a corrupt file
        raise InvalidInput(f"{name}: the image header is corrupt") from None
    width, height = opened.size
    if width * height > max_pixels:
        raise TooLarge(f"{name}: {width}x{height} pixels exceeds the limit of {max_pixels} pixels")
    return opened


def check_request_pixels(
    files: Sequence[tuple[str, bytes]], *, max_pixels: int, max_request_pixels: int
) -> None:
    """Every file's header read, and the pixels they declare summed against the request's
    budget, before any is decoded (a 2 KB PNG may declare 16 M pixels)."""
    total = 0
    for name, data in files:
        width, height = open_image(data, name=name, max_pixels=max_pixels).size
        total += width * height
        if total > max_request_pixels:
            raise TooLarge(
                f"the images declare more than {max_request_pixels} pixels in all "
                f"(max_request_pixels; {name} passes it)"
            )


def decode_grayscale(
    data: bytes, *, name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode the first frame of PNG/JPEG/BMP/GIF/WebP/TIFF bytes into a single-channel float
    ("F") image in 0..255; every colour mode is mapped explicitly or refused (415).

    The header is read first; an image whose declared size exceeds ``max_pixels`` is refused
    before its pixel data is decompressed.
    """
    image = open_image(data, name=name, max_pixels=max_pixels)
    mode = image.mode
    if mode not in _WIDE_MODES | _PLAIN_MODES | _ALPHA_MODES | {"I"}:
        raise UnsupportedMediaType(
            f"{name}: colour mode {mode} is not supported; send grayscale, RGB(A), palette, "
            "CMYK or 16-bit grayscale images"
        )
    try:
        image.load()
        return _to_gray(image, name)
    except ServiceError:
        raise
    except Exception:  # decoders of untrusted bytes: truncated, corrupt, inconsistent
        raise InvalidInput(f"{name}: the image is truncated or corrupt") from None


def _to_gray(image: Image.Image, name: str) -> Image.Image:
    if image.mode in _WIDE_MODES or image.mode == "I":
        # 16-bit grayscale (Pillow opens some as 32-bit "I"): convert("L") would clip at 255.
        pixels = np.asarray(image, dtype=np.float32)
        if image.mode == "I" and pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
            raise UnsupportedMediaType(
                f"{name}: 32-bit integer pixels are not supported; send 8- or 16-bit images"
            )
        return Image.fromarray(pixels / np.float32(257.0))
    if image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        # Composite transparent pixels onto white paper so that they read as background.
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    return image.convert("L").convert("F")
