"""Wire codecs: JSON nested lists and .npy/.npz, their limits and their error messages."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np
import pytest

from service.codecs.json_arrays import array_from_json, json_may_hold_booleans, parse_json
from service.codecs.npy import dump_npy, dump_npz, load_npy, load_npz
from service.errors import InvalidInput, TooLarge

F32: list[np.dtype[Any]] = [np.dtype(np.float32), np.dtype(np.float64)]


def from_json(obj, dtype=np.float32, max_elements=100):
    return array_from_json(obj, dtype=dtype, max_elements=max_elements)


@pytest.mark.parametrize(
    ("obj", "shape"),
    [(1.5, ()), (3, ()), ([], (0,)), ([[]], (1, 0)), ([1, 2.5], (2,)), ([[1], [2]], (2, 1))],
)
def test_json_arrays_keep_their_shape(obj, shape):
    arr = from_json(obj)
    assert arr.shape == shape
    assert arr.dtype == np.float32
    np.testing.assert_array_equal(arr, np.array(obj, dtype=np.float32))


def test_json_float64_keeps_precision():
    assert from_json([0.1], dtype=np.float64)[0] == 0.1


def test_rank_eight_is_accepted_and_nine_refused():
    eight: float | list[Any] = 1.0
    for _ in range(8):
        eight = [eight]
    assert from_json(eight).shape == (1,) * 8
    with pytest.raises(InvalidInput, match=r"x has more than 8 dimensions; at most 8 are allowed"):
        from_json([eight])


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, [2]], r"x is ragged: x\[1\] is a list where a number was expected"),
        ([[1, 2], [3]], r"x is ragged: x\[1\] has length 1 where 2 was expected"),
        ([[1], 2], r"x is ragged: x\[1\] is an integer .* where a list of length 1"),
        ([1, None], r"x\[1\] is null; x must hold numbers only"),
        ([[1, 2], [3, "a"]], r"x\[1\]\[1\] is a string \('a'\); x must hold numbers only"),
        ([1.0, True], r"x\[1\] is a boolean \(true\); x must hold numbers only"),
        (False, r"x is a boolean \(false\)"),
        ({"a": 1}, r"x is an object"),
        ([10**400], r"x\[0\] is an integer too large for a float"),
        ([0.0, 1e39], r"x\[1\] = 1e\+39 is outside the float32 range"),
    ],
)
def test_bad_json_arrays_say_what_and_where(obj, message):
    with pytest.raises(InvalidInput, match=message):
        from_json(obj)


def test_huge_integers_within_float_range_are_numbers():
    assert from_json([10**30], dtype=np.float64)[0] == 1e30


def test_json_element_limit_names_the_limit():
    with pytest.raises(
        TooLarge, match=r"x has 101 elements; the limit is 100 elements per request"
    ):
        from_json([0.0] * 101)


def test_parse_json_explains_non_finite_tokens():
    assert parse_json(b'{"x": [1]}') == {"x": [1]}
    with pytest.raises(
        InvalidInput, match=r"^malformed JSON: .*NaN, Infinity and -Infinity are not JSON"
    ):
        parse_json(b'{"x": [NaN]}')
    with pytest.raises(InvalidInput, match=r"^malformed JSON"):
        parse_json(b'{"x": [1e400]}')


def load(body, max_elements=100):
    return load_npy(body, max_elements=max_elements, allowed_dtypes=F32)


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f8"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_round_trip(dtype, order):
    arr = np.asarray(np.arange(6).reshape(2, 3), dtype=dtype, order=order)
    out = load(dump_npy(arr))
    assert out.dtype.isnative
    assert out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, arr)


def test_npy_empty_and_scalar():
    assert load(dump_npy(np.zeros((0, 3), np.float32))).shape == (0, 3)
    scalar = load(dump_npy(np.asarray(np.float64(2.0))))
    assert scalar.shape == ()
    assert scalar == 2.0


def test_npy_header_v2_is_read():
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ones(3, np.float32), version=(2, 0))
    np.testing.assert_array_equal(load(buffer.getvalue()), np.ones(3))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", r"the body is not a valid \.npy file \(its header cannot be read\)"),
        (b"x" * 20, r"the body is not a valid \.npy file .*numpy\.save"),
        (
            dump_npy(np.ones(3, np.float32))[:-1],
            r"truncated or padded \.npy file: .*12 data bytes\) but 11",
        ),
        (
            dump_npy(np.ones(3, np.int64)),
            r"the body has dtype int64; allowed dtypes: float32, float64",
        ),
        (dump_npz({"a": np.ones(3)}), r"the body is not a valid \.npy file"),
    ],
)
def test_bad_npy_says_what_is_wrong(body, message):
    with pytest.raises(InvalidInput, match=message):
        load(body)


def test_npy_object_arrays_are_refused_unread():
    buffer = io.BytesIO()
    np.save(buffer, np.array([1, None], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidInput, match=r"object and structured arrays are refused"):
        load(buffer.getvalue())


def test_npy_element_limit_is_checked_from_the_header():
    body = dump_npy(np.ones(101, np.float32))
    with pytest.raises(
        TooLarge, match=r"the body has shape \(101,\): more than the limit of 100 elements"
    ):
        load(body)


def test_npz_holds_named_arrays():
    value, grad = np.arange(3.0), np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    body = dump_npz(
        {
            "value": value,
            "grad": grad,
            "scalar": np.asarray(np.float32(1)),
            "empty": np.ones((0, 2)),
        }
    )
    assert zipfile.ZipFile(io.BytesIO(body)).testzip() is None  # every CRC is right
    with np.load(io.BytesIO(body)) as npz:
        assert npz.files == ["value", "grad", "scalar", "empty"]
        np.testing.assert_array_equal(npz["value"], value)
        np.testing.assert_array_equal(npz["grad"], grad)
        assert npz["scalar"].shape == ()
        assert npz["empty"].shape == (0, 2)


def test_npz_bodies_are_read_back():
    body = dump_npz({"x": np.ones(3, np.float32), "grad_output": np.zeros(3)})
    arrays = load_npz(body, max_elements=10, allowed_dtypes=F32, names=("x", "grad_output"))
    assert arrays["x"].dtype == np.float32
    assert arrays["grad_output"].dtype == np.float64


def test_npz_member_over_the_limit_is_too_large_unread():
    body = dump_npz({"x": np.ones(10_000)})
    with pytest.raises(
        TooLarge, match=r"^the \.npz body declares 80128 bytes of arrays; the limit"
    ):
        load_npz(body, max_elements=10, allowed_dtypes=F32, names=("x",))
    # Within the declared budget (4 KiB of slack per member for headers), the header decides.
    with pytest.raises(TooLarge, match=r"^x has shape \(1000,\): more than the limit of 10 "):
        load_npz(
            dump_npz({"x": np.ones(1000, np.float32)}),
            max_elements=10,
            allowed_dtypes=F32,
            names="x",
        )


def test_boolean_check_may_be_skipped_for_bodies_without_booleans():
    body = b'{"x": [1.0, 2]}'
    assert not json_may_hold_booleans(body)
    assert json_may_hold_booleans(b'{"x": [1.0, true]}')
    assert json_may_hold_booleans(b'{"function": "relu", "x": [false]}')
    assert not json_may_hold_booleans(b'{"function": "softplus", "dtype": "float32", "x": [1e-5]}')
    assert not json_may_hold_booleans(b"")
    obj = parse_json(body)["x"]
    out = array_from_json(obj, dtype=np.float32, max_elements=10, may_hold_booleans=False)
    np.testing.assert_array_equal(out, [1.0, 2.0])
