"""Make the drawn-digit set: 10 digits x 7 styles as people draw and photograph them.

Deterministic (seeded jitter, Pillow's bundled font): `python examples/drawn/make_drawn.py`
rewrites examples/drawn/<digit>-<style>.png|jpg byte for byte. The styles:

- thin:      a 3 px pen stroke, dark on white, centred in 256x256
- thick:     a 28 px marker stroke filling a 200x200 frame, dark on white
- offcentre: a 12 px white stroke on black, in the lower-right of a 280x280 canvas (a drawing app)
- small:     a 5 px pen stroke 48 px tall in a 480x360 white canvas
- chalk:     a 20 px light stroke on dark grey filling 280x280 (MNIST-style canvas)
- photo:     a blue-grey pen digit on unevenly lit paper, blurred, noisy, saved as JPEG (quality 60)
- typed:     the digit in Pillow's bundled font, dark grey on off-white, 160x160
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
Point = tuple[float, float]
Stroke = list[Point]


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> Stroke:
    """Points on an ellipse from angle a0 to a1 (degrees; 0 = right, 90 = down)."""
    angles = np.radians(np.linspace(a0, a1, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


#: Each digit as pen strokes in a unit box (x right, y down).
STROKES: dict[int, list[Stroke]] = {
    0: [arc(0.5, 0.5, 0.45, 0.5, -90, 270, 40)],
    1: [[(0.2, 0.22), (0.55, 0.0), (0.55, 1.0)]],
    2: [[*arc(0.5, 0.27, 0.42, 0.27, 190, 380), (0.05, 1.0), (0.98, 1.0)]],
    3: [arc(0.5, 0.25, 0.4, 0.25, 200, 450) + arc(0.5, 0.75, 0.45, 0.25, -90, 150)],
    4: [[(0.72, 1.0), (0.72, 0.0), (0.0, 0.68), (1.0, 0.68)]],
    5: [[(0.9, 0.0), (0.22, 0.0), (0.2, 0.45)], arc(0.5, 0.68, 0.42, 0.32, 225, 500)],
    6: [arc(0.6, 0.72, 0.5, 0.72, 290, 180) + arc(0.5, 0.72, 0.4, 0.28, 180, 540)],
    7: [[(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)]],
    8: [arc(0.5, 0.25, 0.35, 0.25, 90, 450), arc(0.5, 0.75, 0.45, 0.25, -90, 270)],
    9: [[*arc(0.45, 0.3, 0.4, 0.3, 0, 360), (0.8, 1.0)]],
}


def hand(
    digit: int, rng: np.random.Generator, box: tuple[float, float, float, float]
) -> list[Stroke]:
    """The digit's strokes with a writer's slant and wobble, mapped into box (x, y, w, h)."""
    x0, y0, w, h = box
    slant = rng.uniform(-0.15, 0.2)
    out = []
    for stroke in STROKES[digit]:
        # A slow wobble along the stroke, not per-point jitter: hands waver, they do not shake.
        t = np.linspace(0.0, 2 * math.pi, len(stroke))[:, None]
        amplitude, phase = rng.normal(0.0, 0.025, size=2), rng.uniform(0, 2 * math.pi, size=2)
        wobble = amplitude * np.sin(t + phase)
        out.append(
            [
                (x0 + (x + dx + slant * (0.5 - y)) * w, y0 + (y + dy) * h)
                for (x, y), (dx, dy) in zip(stroke, wobble, strict=True)
            ]
        )
    return out


def draw(
    size: tuple[int, int],
    paper: int,
    ink: int,
    width: int,
    strokes: list[Stroke],
) -> Image.Image:
    """Strokes rendered at 4x and box-downsampled: anti-aliased like a drawing app's canvas."""
    big = Image.new("L", (size[0] * 4, size[1] * 4), paper)
    pen = ImageDraw.Draw(big)
    for stroke in strokes:
        points = [(4 * x, 4 * y) for x, y in stroke]
        pen.line(points, fill=ink, width=4 * width, joint="curve")
        r = 2 * width
        for x, y in (points[0], points[-1]):
            pen.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    return big.resize(size, Image.Resampling.BOX)


def thin(digit: int, rng: np.random.Generator) -> Image.Image:
    return draw((256, 256), 255, 0, 3, hand(digit, rng, (80, 48, 100, 160)))


def thick(digit: int, rng: np.random.Generator) -> Image.Image:
    return draw((200, 200), 250, 10, 28, hand(digit, rng, (45, 25, 110, 150)))


def offcentre(digit: int, rng: np.random.Generator) -> Image.Image:
    return draw((280, 280), 0, 255, 12, hand(digit, rng, (160, 130, 70, 120)))


def small(digit: int, rng: np.random.Generator) -> Image.Image:
    return draw((480, 360), 255, 20, 5, hand(digit, rng, (100, 220, 30, 48)))


def chalk(digit: int, rng: np.random.Generator) -> Image.Image:
    return draw((280, 280), 40, 230, 20, hand(digit, rng, (70, 30, 140, 220)))


def photo(digit: int, rng: np.random.Generator) -> Image.Image:
    """A pen digit on paper lit from one side, as a phone camera sees it."""
    size = (320, 240)
    ink = draw(size, 0, 255, 6, hand(digit, rng, (120, 50, 80, 140)))
    coverage = np.asarray(ink, dtype=np.float32)[..., None] / 255.0
    ramp = np.linspace(200.0, 240.0, size[0], dtype=np.float32)[None, :, None]
    paper = ramp * np.array([1.0, 0.98, 0.93], dtype=np.float32)
    pen = np.array([40.0, 50.0, 90.0], dtype=np.float32)
    rgb = paper * (1 - coverage) + pen * coverage
    rgb += rng.normal(0.0, 5.0, size=rgb.shape).astype(np.float32)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    return image.filter(ImageFilter.GaussianBlur(1.0)).rotate(
        float(rng.uniform(-6, 6)), fillcolor=(210, 206, 195)
    )


def typed(digit: int, rng: np.random.Generator) -> Image.Image:
    image = Image.new("L", (160, 160), 235)
    font = ImageFont.load_default(size=110)
    ImageDraw.Draw(image).text((80, 80), str(digit), fill=50, font=font, anchor="mm")
    return image


STYLES: dict[str, Callable[[int, np.random.Generator], Image.Image]] = {
    "thin": thin,
    "thick": thick,
    "offcentre": offcentre,
    "small": small,
    "chalk": chalk,
    "photo": photo,
    "typed": typed,
}


def make(out: Path) -> list[Path]:
    """Write every (digit, style) image into ``out``; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for s, (style, render) in enumerate(STYLES.items()):
        for digit in range(10):
            image = render(digit, np.random.default_rng(100 * s + digit))
            if style == "photo":
                path = out / f"{digit}-{style}.jpg"
                image.save(path, "JPEG", quality=60)
            else:
                path = out / f"{digit}-{style}.png"
                image.save(path, "PNG", optimize=True)
            written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    print(f"{len(make(target))} images in {target}")
