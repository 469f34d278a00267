"""The compiled normalising pass: numpy's results bit for bit, its range check numpy's, and the
numpy path's refusals whenever it answers None."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from service import jit
from service.classifier import normalize
from service.classifier.preprocess import prepare
from service.errors import InvalidInput
from tests.unit.test_model import META

pytestmark = pytest.mark.skipif(not jit.AVAILABLE, reason="numba is not installed")

#: A range, mean and std whose float32 roundings differ from their float64 values.
ODD = dataclasses.replace(META, input_range=(0.1, 16.3), mean=0.3055397570133209, std=0.37)


def bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint32)


def request_array(values: np.ndarray, offset: int, writable: bool) -> np.ndarray:
    """``values`` as a request body would hold them: np.frombuffer at a byte offset (unaligned
    unless a multiple of 4), read-only unless the buffer is a bytearray."""
    data = bytes(offset) + values.astype(np.float32).tobytes()
    buffer = bytearray(data) if writable else data
    return np.frombuffer(buffer, np.float32, offset=offset).reshape(values.shape)


@pytest.mark.parametrize("meta", [META, ODD], ids=["tiny", "odd"])
@pytest.mark.parametrize("images", [1, 7, 64])
@pytest.mark.parametrize(("offset", "writable"), [(0, True), (0, False), (1, False), (3, True)])
def test_the_pass_is_numpys_normalize_bit_for_bit(meta, images, offset, writable):
    rng = np.random.default_rng(images + offset)
    low, high = meta.input_range
    values = rng.uniform(low, high, (images, *meta.input_shape)).astype(np.float32)
    # The range's own ends (as float32, as numpy compares) and values beside them are inside.
    flat = values.reshape(-1)
    flat[:4] = [np.float32(low), np.float32(high), np.nextafter(np.float32(low), 1), low]
    given = request_array(values, offset, writable)
    assert given.flags.aligned == (offset % 4 == 0)
    assert given.flags.writeable == writable
    out = normalize.checked(given, meta)
    assert out is not None
    expected = meta.normalize(given)
    assert out.dtype == expected.dtype
    assert out.shape == expected.shape
    assert np.array_equal(bits(out), bits(expected))
    assert np.array_equal(bits(prepare(given, meta, max_images=64)), bits(expected))


@pytest.mark.parametrize(
    "bad",
    [np.nan, np.inf, -np.inf, -1e-7, 255.00002, "below-low", "above-high"],
)
def test_a_value_outside_the_range_gets_none_and_prepare_refuses_it(bad):
    meta = ODD if isinstance(bad, str) else META
    low, high = (np.float32(x) for x in meta.input_range)
    value = {"below-low": np.nextafter(low, -1), "above-high": np.nextafter(high, 99)}.get(bad, bad)
    batch = np.full((3, *meta.input_shape), low, np.float32)
    batch[2, 0, 1, 2] = value
    assert normalize.checked(batch, meta) is None
    with pytest.raises(InvalidInput, match=r"NaN or Infinity|outside the model's raw range"):
        prepare(batch, meta, max_images=3)


def test_other_arrays_take_the_numpy_path():
    low_value = np.full((2, *META.input_shape), 3, np.float32)
    for other in (
        low_value.astype(np.float64),
        low_value.astype(np.uint8),
        low_value.astype(">f4"),
        np.asfortranarray(np.full((2, 1, 4, 4), 3, np.float32).transpose(0, 1, 3, 2)),
    ):
        assert normalize.checked(other, META) is None
        assert np.array_equal(prepare(other, META, max_images=2), META.normalize(low_value))


def test_without_numba_prepare_answers_the_same(monkeypatch):
    batch = np.linspace(0, 255, 32, dtype=np.float32).reshape(2, *META.input_shape)
    compiled = prepare(batch, META, max_images=2)
    monkeypatch.setattr(normalize, "_KERNEL", None)
    assert normalize.checked(batch, META) is None
    assert np.array_equal(bits(prepare(batch, META, max_images=2)), bits(compiled))


def test_warm_up_compiles_every_array_type_a_request_brings():
    normalize.warm_up()
    before = len(normalize._KERNEL.signatures)
    for offset, writable in ((0, True), (0, False), (1, False), (1, True)):
        assert (
            normalize.checked(request_array(np.ones((1, 1, 4, 4)), offset, writable), META)
            is not None
        )
    assert len(normalize._KERNEL.signatures) == before  # nothing compiled on the request path
