"""v2 inference requests and responses: the protocol-free messages, and their JSON body with the
binary tensor extension (a JSON header, then the blobs of binary tensors in tensor order)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from service.codecs import Body
from service.codecs.json_arrays import parse_json
from service.codecs.v2_tensors import Tensor, datatype_of, encode_list, encode_raw
from service.errors import InvalidInput, TooLarge, UnsupportedMediaType, excerpt


@dataclass
class RequestedOutput:
    """An output the client asks for: ``binary`` None follows the request's default."""

    name: str
    binary: bool | None = None
    classification: int | None = None


@dataclass
class InferRequest:
    """One inference request as every transport hands it over."""

    inputs: list[Tensor]
    outputs: list[RequestedOutput] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    binary_output: bool = False


@dataclass
class OutputTensor:
    """One computed output and whether it goes back as a blob."""

    name: str
    array: np.ndarray[Any, Any]
    binary: bool = False

    @property
    def datatype(self) -> str:
        return datatype_of(self.array.dtype)


@dataclass
class InferResponse:
    model_name: str
    model_version: str
    outputs: list[OutputTensor]
    id: str = ""


CODINGS = ("gzip", "deflate")


def inflate(body: Body, coding: str, limit: int) -> bytes:
    """A gzip or deflate (zlib) body inflated, refused with TooLarge as soon as it passes
    ``limit`` bytes (a few KB may inflate to gigabytes)."""
    if coding not in CODINGS:
        raise UnsupportedMediaType(
            f"Content-Encoding {excerpt(coding)} is not supported; use gzip or deflate"
        )
    inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if coding == "gzip" else 0))
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"the {coding} body is corrupt: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"the request body inflates past the limit of {limit} bytes")
    if not inflater.eof:
        raise InvalidInput(f"the {coding} body is truncated")
    return out


def deflate(parts: Sequence[bytes | memoryview], coding: str) -> bytes:
    """A response body compressed with ``coding`` (gzip or deflate)."""
    compressor = zlib.compressobj(
        6, zlib.DEFLATED, zlib.MAX_WBITS | (16 if coding == "gzip" else 0)
    )
    return b"".join([*(compressor.compress(part) for part in parts), compressor.flush()])


def read_body(body: Body, header_length: int | None, max_json_bytes: int) -> InferRequest:
    """An infer request body: all JSON, or ``header_length`` bytes of JSON then the blobs.

    The JSON header's byte limit also bounds its values (check_values would find fewer commas
    than bytes), so no count of them is needed."""
    length = len(body) if header_length is None else header_length
    if not 0 <= length <= len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length {length} is outside the body's 0..{len(body)} bytes"
        )
    if length > max_json_bytes:
        raise TooLarge(
            f"the JSON header of {length} bytes exceeds max_json_bytes ({max_json_bytes}); send "
            "big tensors as binary data"
        )
    head = body if length == len(body) else memoryview(body)[:length]
    document = parse_json(head)
    if type(document) is not dict:
        raise InvalidInput('the request must be a JSON object: {"inputs": [...]}')
    return request_from_json(document, memoryview(body)[length:])


def request_from_json(document: dict[str, Any], blobs: memoryview) -> InferRequest:
    """The JSON header's inputs, outputs and parameters; binary inputs take their blobs in
    order, each as long as its binary_data_size, which must account for every byte.

    Types are checked inline (``type(v) is list``: JSON holds no subclasses), a helper called
    only to word the refusal: this runs on every request."""
    inputs, offset = [], 0
    raw_inputs = document.get("inputs", [])
    if type(raw_inputs) is not list or not raw_inputs:
        raise _no_inputs(raw_inputs)
    for item in raw_inputs:
        tensor = _tensor(item)
        size = tensor.parameters.pop("binary_data_size", None)
        if size is not None:
            if type(size) is not int or not 0 <= size <= len(blobs) - offset:
                raise InvalidInput(
                    f"input {excerpt(tensor.name)}: binary_data_size {excerpt(size)} is not "
                    f"within the {len(blobs) - offset} bytes of binary data left"
                )
            tensor.raw, offset = blobs[offset : offset + size], offset + size
        inputs.append(tensor)
    if offset != len(blobs):
        raise InvalidInput(
            f"{len(blobs) - offset} bytes of binary data follow the JSON header that no "
            "input's binary_data_size claims"
        )
    outputs = []
    for item in _list(document, "outputs"):  # a loop: a comprehension is one more call
        outputs.append(_requested(item))
    parameters = _dict(document, "parameters")
    binary = parameters.pop("binary_data_output", False)
    request_id = document.get("id", "")
    return InferRequest(
        inputs,
        outputs,
        parameters,
        request_id if type(request_id) is str else _text(request_id, "id"),
        binary is True,
    )


def _no_inputs(value: Any) -> InvalidInput:
    if type(value) is not list:
        return InvalidInput(f"'inputs' must be a list, got {excerpt(value)}")
    return InvalidInput('"inputs" must list at least one input tensor')


def _tensor(item: Any) -> Tensor:
    if type(item) is not dict or "name" not in item:
        raise InvalidInput(f"each input must be an object with a name, got {excerpt(item)}")
    name = item["name"]
    if type(name) is not str:
        name = _text(name, "input name")
    for key in ("shape", "datatype"):
        if key not in item:
            raise InvalidInput(f"input {excerpt(name)} needs {key!r}")
    datatype = item["datatype"]
    if type(datatype) is not str:
        datatype = _text(datatype, "datatype")
    return Tensor(name, datatype, item["shape"], _dict(item, "parameters"), None, item.get("data"))


def _requested(item: Any) -> RequestedOutput:
    if type(item) is not dict or "name" not in item:
        raise InvalidInput(f"each output must be an object with a name, got {excerpt(item)}")
    parameters = item.get("parameters") or {}
    if type(parameters) is not dict:
        parameters = _dict(item, "parameters")
    binary = parameters.get("binary_data")
    count = parameters.get("classification")
    if count is not None and type(count) is not int:
        raise InvalidInput(f"classification must be an integer, got {excerpt(count)}")
    name = item["name"]
    return RequestedOutput(
        name if type(name) is str else _text(name, "output name"),
        None if binary is None else binary is True,
        count,
    )


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise InvalidInput(f"{key!r} must be a list, got {excerpt(value)}")
    return value


def _dict(document: dict[str, Any], key: str) -> dict[str, Any]:
    """``document[key]``, an object or absent ({}): the document's own, not a copy (it was
    parsed for this request alone)."""
    value = document.get(key) or {}
    if type(value) is not dict:
        raise InvalidInput(f"{key!r} must be an object, got {excerpt(value)}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {excerpt(value)}")
    return value


def write_body(response: InferResponse) -> tuple[list[bytes | memoryview], int | None]:
    """The response body's parts and, when blobs follow, the JSON header's length."""
    outputs, blobs = [], []
    for output in response.outputs:
        entry: dict[str, Any] = {
            "name": output.name,
            "datatype": datatype_of(output.array.dtype),
            "shape": list(output.array.shape),
        }
        if output.binary:
            blob = encode_raw(output.array)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = encode_list(output.array)
        outputs.append(entry)
    document: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    }
    if response.id:
        document["id"] = response.id
    head = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    return [head, *blobs], len(head) if blobs else None
