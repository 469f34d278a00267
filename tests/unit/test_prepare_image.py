"""prepare_image: uploads made like the training digits (crop, fit, centre, 4x4 blocks, polarity)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from service.classifier.preprocess import dark_ink, prepare_image

SIZE = (8, 8)
DIGITS = (0.0, 16.0)


def seven(canvas: tuple[int, int], box: tuple[int, int, int, int], width: int) -> np.ndarray:
    """A light '7' (bar and diagonal) on black, drawn into ``box`` (left, top, right, bottom)."""
    image = Image.new("L", canvas, 0)
    left, top, right, bottom = box
    ImageDraw.Draw(image).line(
        [(left, top), (right, top), (left + (right - left) // 3, bottom)], fill=255, width=width
    )
    return np.asarray(image, dtype=np.float32)


def prepared(pixels: np.ndarray, **options: object) -> np.ndarray:
    return prepare_image(pixels, SIZE, DIGITS, invert=None, **options)  # type: ignore[arg-type]


REFERENCE = seven((64, 64), (12, 2, 52, 62), 6)


def close(a: np.ndarray, b: np.ndarray) -> None:
    """Within a block's worth of rounding: mean |difference| under 1 of 16."""
    assert np.abs(a - b).mean() < 1.0, (a.round(), b.round())


def test_output_is_the_models_size_and_range_with_full_ink_somewhere() -> None:
    out = prepared(REFERENCE)
    assert out.shape == SIZE
    assert out.dtype == np.float32
    assert out.min() == 0.0
    assert out.max() == 16.0  # stretched: 98 % of the digits have a full block


def test_the_ink_fills_the_height_and_is_centred_by_its_box() -> None:
    """Like every one of the 1,797 digits: ink in the top and bottom rows, the box centred."""
    out = prepared(seven((300, 200), (20, 30, 60, 110), 4))
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    assert (rows[0], rows[-1]) == (0, 7)
    assert abs(cols[0] + cols[-1] - 7) <= 1  # about the middle, to a block's rounding


@pytest.mark.parametrize(
    "pixels",
    [
        seven((400, 300), (340, 240, 360, 270), 3),  # small, in a corner of a big canvas
        seven((64, 64), (2, 2, 42, 62), 6),  # off-centre to the left
        seven((640, 640), (120, 20, 520, 620), 60),  # big
    ],
    ids=["small-in-a-corner", "off-centre", "big"],
)
def test_position_and_scale_do_not_matter(pixels: np.ndarray) -> None:
    close(prepared(pixels), prepared(REFERENCE))


def test_dark_ink_on_light_paper_reads_as_light_ink() -> None:
    paper = 230.0 - REFERENCE * (180.0 / 255.0)  # grey ink on off-white paper
    assert dark_ink(paper)
    assert not dark_ink(REFERENCE)
    np.testing.assert_allclose(prepared(paper), prepared(REFERENCE), atol=1e-4)
    # Forced the other way, the paper is the darkest part: nothing brighter is ink.
    assert not prepare_image(paper, SIZE, DIGITS, invert=False).any()


def test_paper_noise_and_uneven_light_are_not_ink() -> None:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.0, 30.0, 64, dtype=np.float32)[None, :]
    noisy = np.clip(REFERENCE * 0.8 + ramp + rng.normal(0, 6, REFERENCE.shape), 0, 255)
    close(prepared(noisy), prepared(REFERENCE))


def test_a_blank_image_is_all_zero() -> None:
    assert not prepared(np.full((50, 40), 200.0, dtype=np.float32)).any()


def test_an_image_at_the_models_size_is_taken_as_prepared() -> None:
    """An 8x8 file is a digit of the data set itself: only mapped onto the range."""
    pixels = np.zeros(SIZE, dtype=np.float32)
    pixels[2:6, 3] = 127.5
    np.testing.assert_array_equal(prepared(pixels), pixels * (16 / 255))


def test_centre_of_mass_moves_a_lopsided_digit() -> None:
    """A '7' has most ink at the top right: centring by mass shifts it left of centring by box."""
    wide = seven((64, 64), (0, 20, 63, 40), 4)  # wider than tall: room to move vertically
    by_box, by_mass = prepared(wide), prepared(wide, centre="mass")
    rows = np.arange(8)[:, None]
    assert (by_mass * rows).sum() / by_mass.sum() > (by_box * rows).sum() / by_box.sum()


def test_other_sizes_and_ranges() -> None:
    out = prepare_image(REFERENCE, (12, 10), (0.0, 255.0), invert=None)
    assert out.shape == (12, 10)
    assert out.max() == pytest.approx(255.0)
