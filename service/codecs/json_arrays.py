"""JSON bodies and nested lists of numbers as numpy arrays; no HTTP here."""

from __future__ import annotations

import math
from itertools import chain
from typing import Any

import numpy as np
import orjson

from service.codecs import Body
from service.errors import InvalidInput, TooLarge

#: Most dimensions an array on the wire may have.
MAX_RANK = 8

_NUMBER_TYPES = frozenset({int, float})
#: Up to this many bytes a plain substring search beats numpy's set-up.
_SMALL_BODY = 64 * 1024


def parse_json(body: Body | memoryview) -> Any:
    """Decode a JSON body with orjson; a malformed one (NaN and Infinity included) is InvalidInput."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"malformed JSON: {exc}. Note that NaN, Infinity and -Infinity are not JSON; "
            "send arrays holding them as an application/x-npy body"
        ) from None


def check_values(body: Body, max_values: int) -> None:
    """TooLarge when a JSON body holds more than ``max_values`` numbers, judged from its bytes
    before any Python object exists: every value after the first in a list follows a comma
    (a few more commas separate keys; a body whose commas are in strings is no array anyway)."""
    if len(body) <= max_values + _KEY_COMMAS:
        return  # fewer bytes than values allowed: no need to count
    separators = body.count(b",")
    if separators > max_values + _KEY_COMMAS:
        raise TooLarge(
            f"the JSON body holds about {separators} values; the limit is {max_values} "
            "elements per request"
        )


#: Commas a JSON request may spend on separating its keys.
_KEY_COMMAS = 64


def json_may_hold_booleans(body: Body) -> bool:
    """False when the JSON text has no true/false token anywhere.

    Small bodies are searched with ``in`` (a fraction of a microsecond); in big ones numpy
    finds the bytes that could start a token (t, f: in keys like "function" and in the tokens
    themselves) and narrows them letter by letter: 2.7 ms for a 1e6-number body where ``in``
    takes 10.7 ms, and at most 8 bytes of memory per body byte whatever the body holds.
    """
    if len(body) <= _SMALL_BODY:
        return b"true" in body or b"false" in body
    text = np.frombuffer(body, dtype=np.uint8)
    for word in (b"true", b"false"):
        starts = np.flatnonzero(text[: len(text) - len(word) + 1] == word[0])
        for offset in range(1, len(word)):
            starts = starts[text[starts + offset] == word[offset]]
        if starts.size:
            return True
    return False


def array_from_json(
    obj: Any,
    *,
    dtype: np.dtype[Any] | type[np.floating[Any]],
    max_elements: int,
    name: str = "x",
    may_hold_booleans: bool = True,
) -> np.ndarray[Any, np.dtype[Any]]:
    """A number or nested lists of numbers (rank 0..8) as an array of the floating ``dtype``.

    Ragged lists, strings, nulls, booleans and objects are InvalidInput naming where they are;
    a value outside the dtype's range is InvalidInput too; more than ``max_elements`` is TooLarge.
    numpy silently turns booleans mixed with numbers into 1.0 and 0.0, so every leaf's type is
    checked (~12 ms per million) unless ``may_hold_booleans`` is False: pass
    ``json_may_hold_booleans(body)`` to skip that check for bodies without true/false.
    """
    target = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
    shape = presumed_shape(obj)
    if len(shape) > MAX_RANK:
        raise InvalidInput(
            f"{name} has more than {MAX_RANK} dimensions; at most {MAX_RANK} are allowed"
        )
    count = math.prod(shape)
    if count > max_elements:
        raise TooLarge(
            f"{name} has {count} elements; the limit is {max_elements} elements per request"
        )
    try:
        arr = np.array(obj)
    except (ValueError, OverflowError):
        arr = None
    if arr is None or arr.dtype.kind not in "fiu" or arr.shape != shape:
        problem = _first_problem(obj, shape, name)
        if problem:
            raise InvalidInput(problem)
        arr = np.array(obj, dtype=np.float64)  # integers beyond int64 but within float range
    if may_hold_booleans and _leaf_types(obj, arr.ndim) - _NUMBER_TYPES:
        raise InvalidInput(_first_problem(obj, shape, name) or f"{name} must hold numbers only")
    if arr.dtype.kind != "f" or arr.dtype.itemsize <= target.itemsize:
        return arr.astype(target, copy=False)  # integers and JSON floats fit: no check needed
    return _narrowed(arr, target, name)


def _narrowed(arr: np.ndarray[Any, Any], target: np.dtype[Any], name: str) -> np.ndarray[Any, Any]:
    """float64 -> float32, refusing a value outside float32's range (it would become inf)."""
    with np.errstate(over="ignore"):
        out = arr.astype(target)
    if out.size and not np.isfinite(out).all():
        index = np.unravel_index(int(np.flatnonzero(~np.isfinite(out))[0]), out.shape)
        where = name + "".join(f"[{i}]" for i in index)
        raise InvalidInput(
            f"{where} = {arr[index].item()!r} is outside the {target.name} range "
            f"(largest magnitude {np.finfo(target).max})"
        )
    return out


def presumed_shape(obj: Any) -> tuple[int, ...]:
    """The shape read along the first elements (checked for raggedness later)."""
    shape: list[int] = []
    while isinstance(obj, list) and len(shape) <= MAX_RANK:
        shape.append(len(obj))
        if not obj:
            break
        obj = obj[0]
    return tuple(shape)


def _leaf_types(obj: Any, ndim: int) -> set[type]:
    leaves: Any = [obj] if ndim == 0 else obj
    for _ in range(ndim - 1):
        leaves = chain.from_iterable(leaves)
    return set(map(type, leaves))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value[:20]!r})"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int):
        return f"an integer too large for a float ({str(value)[:20]}...)"
    return f"a {type(value).__name__}"


def _first_problem(obj: Any, shape: tuple[int, ...], name: str) -> str | None:
    """Walk the lists to say what is wrong and where (only on the error path)."""

    def visit(node: Any, path: tuple[int, ...]) -> str | None:
        where = name + "".join(f"[{i}]" for i in path)
        depth = len(path)
        if depth < len(shape):
            if not isinstance(node, list):
                return (
                    f"{name} is ragged: {where} is {_kind(node) if node is not None else 'null'}"
                    f" where a list of length {shape[depth]} was expected"
                )
            if len(node) != shape[depth]:
                return (
                    f"{name} is ragged: {where} has length {len(node)} where "
                    f"{shape[depth]} was expected; every list at one depth must be as long"
                )
            for i, child in enumerate(node):
                problem = visit(child, (*path, i))
                if problem:
                    return problem
            return None
        if isinstance(node, list):
            return f"{name} is ragged: {where} is a list where a number was expected"
        if type(node) not in _NUMBER_TYPES or (type(node) is int and abs(node) >= 2**1024):
            return f"{where} is {_kind(node)}; {name} must hold numbers only"
        return None

    return visit(obj, ())
