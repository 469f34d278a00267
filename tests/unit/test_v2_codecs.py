"""The v2 tensor and body codecs: every datatype both ways, and hostile input refused before work."""

from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np
import orjson
import pytest

from service.codecs.v2_infer import (
    InferResponse,
    OutputTensor,
    deflate,
    inflate,
    read_body,
    write_body,
)
from service.codecs.v2_tensors import DTYPES, Tensor, checked_shape, decode, encode_raw
from service.errors import InvalidInput, TooLarge, UnsupportedMediaType

LIMIT = 1000


def body(header: dict, *blobs: bytes) -> tuple[bytes, int]:
    head = orjson.dumps(header)
    return head + b"".join(blobs), len(head)


@pytest.mark.parametrize("datatype", list(DTYPES))
def test_every_fixed_datatype_round_trips_raw_and_as_json(datatype):
    dtype = DTYPES[datatype]
    values = np.array([[0, 1, 1], [1, 0, 1]]).astype(dtype)
    raw = bytes(encode_raw(values))
    assert len(raw) == values.size * dtype.itemsize
    from_raw = decode(Tensor("t", datatype, (2, 3), raw=raw), LIMIT)
    assert from_raw.dtype == dtype
    np.testing.assert_array_equal(from_raw, values)
    as_json = values.tolist() if datatype != "FP16" else values.astype(float).tolist()
    for data in (as_json, [v for row in as_json for v in row]):  # nested and flat
        np.testing.assert_array_equal(
            decode(Tensor("t", datatype, (2, 3), data=data), LIMIT), values
        )


def test_bytes_elements_are_length_prefixed_little_endian():
    items = np.array([b"", b"ab", "ünï".encode()], dtype=object)
    raw = bytes(encode_raw(items))
    assert raw[:4] == struct.pack("<I", 0)
    assert raw[4:8] == struct.pack("<I", 2)
    decoded = decode(Tensor("s", "BYTES", (3,), raw=raw), LIMIT)
    assert decoded.tolist() == items.tolist()
    assert decode(Tensor("s", "BYTES", (1, 2), data=["a", "b"]), LIMIT).tolist() == [[b"a", b"b"]]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (struct.pack("<I", 100) + b"abc", "declares 100 bytes but only 3 remain"),
        (struct.pack("<I", 1) + b"a", "holds 1 whole elements; its shape needs 2"),
        (struct.pack("<I", 1) + b"a" + struct.pack("<I", 1) + b"b" + b"zz", "trailing bytes"),
        (b"\x01\x00", "holds 0 whole elements"),
    ],
)
def test_lying_bytes_lengths_are_refused(raw, message):
    with pytest.raises(InvalidInput, match=message):
        decode(Tensor("s", "BYTES", (2,), raw=raw), LIMIT)


def test_a_blob_must_match_shape_times_datatype_size():
    with pytest.raises(
        InvalidInput, match="12 bytes of data for shape \\[4\\] of FP32; expected 16"
    ):
        decode(Tensor("x", "FP32", (4,), raw=b"\0" * 12), LIMIT)


@pytest.mark.parametrize(
    ("shape", "error", "message"),
    [
        ((2**40, 2**40), TooLarge, "1208925819614629174706176 elements; the limit is 1000"),
        ((-1, 4), InvalidInput, "sizes must be integers >= 0"),
        ((1,) * 9, InvalidInput, "at most 8 sizes"),
        ((2.0,), InvalidInput, "sizes must be integers"),
    ],
)
def test_shapes_are_checked_before_any_allocation(shape, error, message):
    with pytest.raises(error, match=message):
        checked_shape("x", shape, LIMIT)


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("FP32", [1.0, True], "True is not a FP32 value"),
        ("INT8", [1, 1000], "outside the range of INT8"),
        ("INT32", [1, 2.5], "2.5 is not a INT32 value"),
        ("BOOL", [1, 0], "1 is not a BOOL value"),
        ("FP32", [1.0], "1 values for shape \\[2\\]; expected 2"),
        ("BF16", [1.0, 2.0], "datatype 'BF16' is not supported"),
        ("BYTES", [1, 2], "BYTES data must be strings"),
    ],
)
def test_json_data_must_fit_datatype_and_shape(datatype, data, message):
    with pytest.raises(InvalidInput, match=message):
        decode(Tensor("x", datatype, (2,), data=data), LIMIT)


def test_binary_request_blobs_go_to_inputs_in_order():
    a, b = np.arange(4, dtype=np.float32), np.array([True, False, True])
    raw, length = body(
        {
            "id": "42",
            "inputs": [
                {
                    "name": "a",
                    "shape": [4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 16},
                },
                {"name": "j", "shape": [1], "datatype": "INT64", "data": [7]},
                {
                    "name": "b",
                    "shape": [3],
                    "datatype": "BOOL",
                    "parameters": {"binary_data_size": 3},
                },
            ],
            "outputs": [{"name": "o", "parameters": {"binary_data": True, "classification": 2}}],
            "parameters": {"binary_data_output": True, "approximate": "tanh"},
        },
        a.tobytes(),
        b.tobytes(),
    )
    request = read_body(raw, length, 1 << 20)
    assert request.id == "42"
    assert request.binary_output
    assert request.parameters == {"approximate": "tanh"}
    np.testing.assert_array_equal(decode(request.inputs[0], LIMIT), a)
    np.testing.assert_array_equal(decode(request.inputs[1], LIMIT), [7])
    np.testing.assert_array_equal(decode(request.inputs[2], LIMIT), b)
    assert (request.outputs[0].binary, request.outputs[0].classification) == (True, 2)


@pytest.mark.parametrize("length", [-1, 10_000])
def test_a_header_length_outside_the_body_is_refused(length):
    raw, _ = body({"inputs": []})
    with pytest.raises(InvalidInput, match="Inference-Header-Content-Length"):
        read_body(raw, length, 1 << 20)


@pytest.mark.parametrize(("size", "extra"), [(17, b""), (-1, b""), (16, b"x"), ("16", b"")])
def test_lying_binary_data_sizes_are_refused(size, extra):
    raw, length = body(
        {
            "inputs": [
                {
                    "name": "a",
                    "shape": [4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": size},
                }
            ]
        },
        b"\0" * 16 + extra,
    )
    with pytest.raises(InvalidInput, match=r"binary_data_size|no input's binary_data_size claims"):
        read_body(raw, length, 1 << 20)


def test_the_json_header_has_its_own_budget():
    raw, length = body({"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1.0]}]})
    with pytest.raises(TooLarge, match="max_json_bytes"):
        read_body(raw, length, length - 1)


def test_inflate_stops_at_the_limit_gzip_bomb():
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB in ~65 KB
    assert len(bomb) < 100_000
    with pytest.raises(TooLarge, match="inflates past the limit of 1048576 bytes"):
        inflate(bomb, "gzip", 1 << 20)


def test_inflate_reads_gzip_and_zlib_deflate_and_refuses_the_rest():
    data = b"hello " * 100
    assert inflate(gzip.compress(data), "gzip", 1 << 20) == data
    assert inflate(zlib.compress(data), "deflate", 1 << 20) == data
    assert zlib.decompress(deflate([data[:10], data[10:]], "deflate")) == data
    assert gzip.decompress(deflate([data], "gzip")) == data
    with pytest.raises(UnsupportedMediaType, match="Content-Encoding 'br' is not supported"):
        inflate(data, "br", 1 << 20)
    with pytest.raises(InvalidInput, match="corrupt"):
        inflate(b"not gzip at all", "gzip", 1 << 20)
    with pytest.raises(InvalidInput, match="truncated"):
        inflate(gzip.compress(data)[:-12], "gzip", 1 << 20)


def test_response_blobs_follow_the_header_in_output_order():
    outputs = [
        OutputTensor("a", np.array([1.5, 2.5], dtype=np.float32), binary=True),
        OutputTensor("b", np.array([[1, 2]], dtype=np.int64)),
        OutputTensor("c", np.array([b"x:1"], dtype=object), binary=True),
    ]
    parts, length = write_body(InferResponse("m", "1", outputs, id="7"))
    joined = b"".join(bytes(part) for part in parts)
    assert length is not None
    header = orjson.loads(joined[:length])
    assert header["id"] == "7"
    assert [
        o["parameters"]["binary_data_size"] for o in header["outputs"] if "parameters" in o
    ] == [8, 7]
    assert header["outputs"][1] == {
        "name": "b",
        "datatype": "INT64",
        "shape": [1, 2],
        "data": [1, 2],
    }
    assert (
        joined[length:]
        == np.array([1.5, 2.5], dtype="<f4").tobytes() + struct.pack("<I", 3) + b"x:1"
    )
    parts, length = write_body(InferResponse("m", "1", outputs[1:2]))
    assert length is None
    assert "id" not in orjson.loads(parts[0])
