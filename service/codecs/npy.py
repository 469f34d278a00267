""".npy and .npz bytes in and out, without pickle, header checked before the data; no HTTP here."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import numpy.lib.format as npy_format

from service.codecs import Body
from service.codecs.json_arrays import MAX_RANK
from service.errors import InvalidInput, TooLarge, excerpt


def load_npy(
    body: Body,
    *,
    max_elements: int,
    allowed_dtypes: Collection[np.dtype[Any]],
    name: str = "the body",
) -> np.ndarray[Any, np.dtype[Any]]:
    """One array from .npy bytes, without pickle; a read-only view of ``body`` when native-endian.

    The header is checked (format, dtype, shape, element count) before any data is touched.
    """
    shape, fortran_order, dtype, offset = _canonical_header(body) or _numpy_header(body, name)
    native = _checked_dtype(dtype, allowed_dtypes, name)
    count = _checked_count(shape, max_elements, name)
    expected = count * dtype.itemsize
    if len(body) - offset != expected:
        raise InvalidInput(
            f"{name} is a truncated or padded .npy file: its header says shape {shape} of "
            f"{native.name} ({expected} data bytes) but {len(body) - offset} bytes follow"
        )
    arr = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    arr = arr.reshape(shape, order="F" if fortran_order else "C")
    return arr if dtype.isnative else arr.astype(native)


def _checked_dtype(
    dtype: np.dtype[Any], allowed_dtypes: Collection[np.dtype[Any]], name: str
) -> np.dtype[Any]:
    """The native form of an allowed numeric dtype, else InvalidInput listing the allowed ones."""
    if dtype.hasobject or dtype.fields is not None:
        raise InvalidInput(
            f"{name} holds a {dtype} array; object and structured arrays are refused"
        )
    native = dtype.newbyteorder("=")
    if native not in {np.dtype(d) for d in allowed_dtypes}:
        allowed = ", ".join(sorted(np.dtype(d).name for d in allowed_dtypes))
        raise InvalidInput(f"{name} has dtype {native.name}; allowed dtypes: {allowed}")
    return native


def _checked_count(shape: Any, max_elements: int, name: str) -> int:
    """The element count of a header's shape: a tuple of at most MAX_RANK non-negative integers
    (booleans are not), each and their product within ``max_elements``."""
    if not isinstance(shape, tuple) or any(type(n) is not int or n < 0 for n in shape):
        raise InvalidInput(
            f"{name} has shape {excerpt(shape)} in its .npy header; a shape is a tuple of "
            "non-negative integers"
        )
    if len(shape) > MAX_RANK:
        raise InvalidInput(f"{name} has {len(shape)} dimensions; at most {MAX_RANK} are allowed")
    count = 1
    for n in shape:  # stepwise, so that a 5,000-digit dimension never meets math.prod
        count *= n
        if n > max_elements or count > max_elements:
            raise TooLarge(
                f"{name} has shape {excerpt(shape)}: more than the limit of {max_elements} "
                "elements per request"
            )
    return count


def _numpy_header(body: Body, name: str) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """Shape, order, dtype and data offset, read by numpy's own (slower) header parser.

    Whatever a malformed header makes numpy raise (ValueError, TypeError, SyntaxError,
    RecursionError, ...) is the client's mistake, answered as InvalidInput.
    """
    stream = io.BytesIO(body)
    try:
        version = npy_format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise InvalidInput(f".npy format version {version} is not supported; use 1.0 or 2.0")
        read = (
            npy_format.read_array_header_1_0
            if version == (1, 0)
            else npy_format.read_array_header_2_0
        )
        shape, fortran_order, dtype = read(stream)
    except InvalidInput:
        raise
    except Exception:  # a parser of untrusted bytes: any failure is a malformed file
        raise InvalidInput(
            f"{name} is not a valid .npy file (its header cannot be read); send one array "
            "written by numpy.save"
        ) from None
    return shape, fortran_order, dtype, stream.tell()


#: The header numpy.save writes for a plain numeric array, e.g.
#: {'descr': '<f4', 'fortran_order': False, 'shape': (64, 8, 8), }
_CANONICAL = re.compile(
    r"\{'descr': '([<>|=]?[fiub]\d{1,2})', 'fortran_order': (True|False), "
    r"'shape': \(((?:\d{1,18}, ?)*(?:\d{1,18})?)\), \} *\n"
)


def _canonical_header(body: Body) -> tuple[tuple[int, ...], bool, np.dtype[Any], int] | None:
    """Shape, order, dtype and data offset of a version 1.0 header in numpy.save's own layout.

    numpy's reader evaluates the header with ast.literal_eval (~50 us, as long as the model run
    for a small batch); this reads the common case with one regular expression. Anything else
    returns None and goes to numpy's reader, which decides.
    """
    if body[:8] != b"\x93NUMPY\x01\x00" or len(body) < 10:
        return None
    end = 10 + int.from_bytes(body[8:10], "little")
    match = _CANONICAL.fullmatch(body[10:end].decode("latin-1"))
    if match is None:
        return None
    shape = tuple(int(part) for part in match[3].split(",") if part.strip())
    try:
        dtype = np.dtype(match[1])
    except TypeError:  # a code numpy lacks, such as <f3: numpy's reader words the refusal
        return None
    return shape, match[2] == "True", dtype, end


def load_npz(
    body: Body,
    *,
    max_elements: int,
    allowed_dtypes: Collection[np.dtype[Any]],
    names: Collection[str],
) -> dict[str, np.ndarray[Any, np.dtype[Any]]]:
    """Named arrays from .npz bytes (numpy.savez, compressed or not).

    Budgets first, from the zip directory: at most one member per name in ``names`` (counted
    in the end record before zipfile parses anything), stored or deflated only, unencrypted,
    declared sizes within ``max_elements`` of the widest allowed dtype in all; zipfile then
    inflates no more than a member declares, and checks its CRC.
    """
    archive, members = _members(body, names)
    budget = max_elements * max(np.dtype(d).itemsize for d in allowed_dtypes) + 4096 * len(names)
    declared = sum(info.file_size for info in members)
    if declared > budget:
        raise TooLarge(
            f"the .npz body declares {declared} bytes of arrays; the limit is {max_elements} "
            "elements per request"
        )
    arrays = {}
    for info in members:
        name = info.filename.removesuffix(".npy")
        try:
            data = _inflate(archive, info)
        except Exception:  # zlib, zipfile and CRC failures of untrusted bytes alike
            raise InvalidInput(
                f"{name}.npy in the .npz body cannot be read (corrupt or truncated)"
            ) from None
        arrays[name] = load_npy(
            data, max_elements=max_elements, allowed_dtypes=allowed_dtypes, name=name
        )
    return arrays


#: Bytes inflated per read: zipfile's read() of a whole member joins it with ``+=`` (a copy
#: of everything, holding the interpreter); pieces this size go straight to their place.
_PIECE = 1 << 20


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytearray:
    """A member's bytes, inflated piece by piece into a buffer of its declared size (zipfile
    stops at that size and checks the CRC at the end)."""
    data = bytearray(info.file_size)
    view = memoryview(data)
    filled = 0
    with archive.open(info) as member:
        while piece := member.read(_PIECE):
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
    view.release()
    del data[filled:]
    return data


_END_RECORD = b"PK\x05\x06"
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _members(body: Body, names: Collection[str]) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """The zip and its members, each checked: an expected name once, stored or deflated,
    unencrypted."""
    allowed = ", ".join(f"{n}.npy" for n in names)
    end = body.rfind(_END_RECORD, max(0, len(body) - 65557))
    if end >= 0 and len(body) >= end + 12:
        entries = int.from_bytes(body[end + 10 : end + 12], "little")
        if entries > len(names):
            raise InvalidInput(
                f"the .npz body has {entries} members; at most {len(names)} ({allowed})"
            )
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = archive.infolist()
    except Exception:
        raise InvalidInput(
            "the body is not a valid .npz file (its zip directory cannot be read); send "
            "arrays written by numpy.savez"
        ) from None
    seen: set[str] = set()
    for info in members:
        name = info.filename.removesuffix(".npy")
        if name not in names or name in seen or len(members) > len(names):
            raise InvalidInput(
                f"unexpected member {excerpt(info.filename)} in the .npz body; allowed: "
                f"{allowed}, each once"
            )
        seen.add(name)
        if info.compress_type not in _METHODS or info.flag_bits & 0x1:
            raise InvalidInput(
                f"{name}.npy in the .npz body is encrypted or compressed with zip method "
                f"{info.compress_type}; write it with numpy.savez or numpy.savez_compressed"
            )
    return archive, members


def _npy_parts(arr: np.ndarray[Any, np.dtype[Any]]) -> tuple[bytes, memoryview]:
    """The .npy header and a view of the data (C order): joined, they are numpy.save's bytes."""
    arr = np.asarray(arr, order="C")  # ascontiguousarray would turn 0-d into 1-d
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, npy_format.header_data_from_array_1_0(arr))
    return header.getvalue(), arr.reshape(-1).view(np.uint8).data


def dump_npy(arr: np.ndarray[Any, np.dtype[Any]]) -> bytes:
    """The .npy bytes of one array (format 1.0, no pickle), built with a single copy."""
    return b"".join(_npy_parts(arr))


def npy_parts(arr: np.ndarray[Any, np.dtype[Any]]) -> list[bytes | memoryview]:
    """dump_npy's bytes in parts, the data a view of ``arr``: nothing copied."""
    return list(_npy_parts(arr))


_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_DOS_DATE_1980 = (0 << 9) | (1 << 5) | 1


def dump_npz(arrays: Mapping[str, np.ndarray[Any, np.dtype[Any]]]) -> bytes:
    """The uncompressed .npz bytes of named arrays (members ``<name>.npy``), as numpy.savez
    writes them, built with one CRC pass and a single copy (numpy.savez takes ~3x longer)."""
    return b"".join(npz_parts(arrays))


def npz_parts(arrays: Mapping[str, np.ndarray[Any, np.dtype[Any]]]) -> list[bytes | memoryview]:
    """dump_npz's bytes in parts, each array's data a view of it: only the CRC pass."""
    parts: list[bytes | memoryview] = []
    central: list[bytes] = []
    offset = 0
    for name, array in arrays.items():
        header, data = _npy_parts(array)
        size = len(header) + data.nbytes
        if size >= 2**32 - 1 or offset >= 2**32 - 1:
            raise TooLarge(f"{name} is too large for an .npz answer; ask for one output (.npy)")
        crc = zlib.crc32(data, zlib.crc32(header))
        filename = f"{name}.npy".encode()
        fields = (0, 0, 0, _DOS_DATE_1980, crc, size, size, len(filename))
        local = _LOCAL.pack(0x04034B50, 20, *fields, 0) + filename
        central.append(_CENTRAL.pack(0x02014B50, 20, 20, *fields, 0, 0, 0, 0, 0, offset) + filename)
        parts += [local, header, data]
        offset += len(local) + size
    directory = b"".join(central)
    end = _END.pack(0x06054B50, 0, 0, len(central), len(central), len(directory), offset, 0)
    return [*parts, directory, end]
