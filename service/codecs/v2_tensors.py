"""Open Inference Protocol (KServe v2) tensors <-> numpy arrays, each checked against its budget
before any work: element counts from the shape, blob sizes from shape x datatype size."""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.errors import InvalidInput, TooLarge, excerpt

#: The fixed-size datatypes and their little-endian numpy dtypes. BYTES is variable-sized
#: (4-byte little-endian length + bytes per element); BF16 has no numpy dtype here.
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
BYTES = "BYTES"
DATATYPES = (*DTYPES, BYTES)
_NAMES = {dtype: name for name, dtype in DTYPES.items()}
#: Most dimensions a tensor may have.
MAX_RANK = 8
_LENGTH = struct.Struct("<I")
#: Byte orders already little-endian (``|``: one byte, no order).
_LITTLE = ("<", "|", "=") if sys.byteorder == "little" else ("<", "|")


@dataclass
class Tensor:
    """One input or output tensor: its data is raw bytes (binary extension, gRPC raw
    contents), a JSON list (nested or flat) or, once decoded, an array."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    raw: bytes | memoryview | None = None
    data: Any = None


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The v2 datatype name of a numpy dtype (object arrays are BYTES)."""
    name = _NAMES.get(dtype) or _NAMES.get(dtype.newbyteorder("<"))
    if name is not None:
        return name
    if dtype.kind == "O":
        return BYTES
    raise InvalidInput(f"dtype {dtype} has no v2 datatype")


def checked_shape(name: str, shape: Sequence[Any], max_elements: int) -> tuple[int, ...]:
    """The shape as a tuple of ints >= 0, its element count within ``max_elements``."""
    if not isinstance(shape, list | tuple) or len(shape) > MAX_RANK:
        raise InvalidInput(
            f"input {excerpt(name)}: shape must be a list of at most {MAX_RANK} sizes, "
            f"got {excerpt(shape)}"
        )
    for size in shape:  # a loop, not all(genexpr): no generator resumed per size
        if type(size) is not int or size < 0:
            raise InvalidInput(
                f"input {excerpt(name)}: shape sizes must be integers >= 0, got {excerpt(shape)}"
            )
    count = math.prod(shape)  # Python ints: no overflow, however large the sizes
    if count > max_elements:
        raise TooLarge(
            f"input {excerpt(name)} has shape {excerpt(list(shape))}: {count} elements; the "
            f"limit is {max_elements} elements per request"
        )
    return tuple(shape)


def decode(tensor: Tensor, max_elements: int) -> np.ndarray[Any, Any]:
    """The tensor as an array of its shape (BYTES: an object array of bytes), refused with a
    message naming the tensor when datatype, shape and data disagree."""
    shape = checked_shape(tensor.name, tensor.shape, max_elements)
    if tensor.datatype not in DATATYPES:
        raise InvalidInput(
            f"input {excerpt(tensor.name)}: datatype {excerpt(tensor.datatype)} is not "
            f"supported; use one of {', '.join(DATATYPES)}"
        )
    if tensor.raw is not None:
        return _from_raw(tensor, shape)
    if tensor.data is None:
        raise InvalidInput(
            f'input {excerpt(tensor.name)} has no data: send "data" or binary_data_size'
        )
    return _from_list(tensor, shape)


def _from_raw(tensor: Tensor, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    raw = tensor.raw
    assert raw is not None
    count = math.prod(shape)
    if tensor.datatype == BYTES:
        return np.array(split_bytes(tensor.name, raw, count), dtype=object).reshape(shape)
    dtype = DTYPES[tensor.datatype]
    expected = count * dtype.itemsize
    if len(raw) != expected:
        raise InvalidInput(
            f"input {excerpt(tensor.name)}: {len(raw)} bytes of data for shape "
            f"{list(shape)} of {tensor.datatype}; expected {expected} bytes"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def split_bytes(name: str, raw: bytes | memoryview, count: int) -> list[bytes]:
    """``count`` BYTES elements (4-byte little-endian length, then the bytes) filling ``raw``."""
    view = memoryview(raw).cast("B")
    items: list[bytes] = []
    offset = 0
    while offset < len(view):
        if offset + 4 > len(view) or len(items) == count:
            break
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise InvalidInput(
                f"input {excerpt(name)}: element {len(items)} declares {length} bytes but only "
                f"{len(view) - offset} remain"
            )
        items.append(bytes(view[offset : offset + length]))
        offset += length
    if len(items) != count or offset != len(view):
        raise InvalidInput(
            f"input {excerpt(name)}: the BYTES data holds {len(items)} whole elements"
            f"{' and trailing bytes' if offset != len(view) else ''}; its shape needs {count}"
        )
    return items


def _from_list(tensor: Tensor, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    flat = _flatten(tensor.data)
    count = math.prod(shape)
    if len(flat) != count:
        raise InvalidInput(
            f"input {excerpt(tensor.name)}: {len(flat)} values for shape {list(shape)}; "
            f"expected {count}"
        )
    if tensor.datatype == BYTES:
        if not all(isinstance(v, str | bytes) for v in flat):
            raise InvalidInput(f"input {excerpt(tensor.name)}: BYTES data must be strings")
        items = [v.encode() if isinstance(v, str) else v for v in flat]
        return np.array(items, dtype=object).reshape(shape)
    dtype = DTYPES[tensor.datatype]
    allowed = _ALLOWED[dtype.kind]
    bad = next((v for v in flat if type(v) not in allowed), _NONE)
    if bad is not _NONE:
        raise InvalidInput(
            f"input {excerpt(tensor.name)}: {excerpt(bad)} is not a {tensor.datatype} value"
        )
    try:
        return np.array(flat, dtype=dtype).reshape(shape)
    except OverflowError:
        raise InvalidInput(
            f"input {excerpt(tensor.name)}: a value is outside the range of {tensor.datatype}"
        ) from None


_NONE = object()
#: The JSON value types each kind of datatype takes (a bool is never a number here).
_ALLOWED: dict[str, tuple[type, ...]] = {
    "b": (bool,),
    "u": (int,),
    "i": (int,),
    "f": (int, float),
}


def _flatten(data: Any) -> list[Any]:
    """Nested lists (row-major) or a flat list as one flat list; a scalar is one value."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                if len(stack) > MAX_RANK:
                    raise InvalidInput(f"data nests deeper than {MAX_RANK} levels")
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def encode_raw(array: np.ndarray[Any, Any]) -> bytes | memoryview:
    """An output's blob: little-endian, row-major; BYTES as length-prefixed elements."""
    if array.dtype.kind == "O":
        return b"".join(_LENGTH.pack(len(item)) + item for item in _as_bytes(array))
    if array.dtype.byteorder not in _LITTLE or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
    return array.data.cast("B")


def encode_list(array: np.ndarray[Any, Any]) -> Any:
    """An output's JSON ``data``: flat, row-major (BYTES as text); a contiguous 1-D array
    for the others (orjson writes numpy arrays natively)."""
    if array.dtype.kind == "O":
        return [item.decode("utf-8", "replace") for item in _as_bytes(array)]
    if array.dtype == np.float16:
        return array.astype(np.float32).reshape(-1)
    return np.ascontiguousarray(array).reshape(-1)


def _as_bytes(array: np.ndarray[Any, Any]) -> list[bytes]:
    return [item if isinstance(item, bytes) else str(item).encode() for item in array.flat]
