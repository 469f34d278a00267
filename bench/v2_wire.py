"""The v2 bench's request bodies and answer checks: binary-tensor and JSON HTTP bodies, and gRPC
ModelInfer messages encoded by hand (protobuf wire format; no generated code needed to drive
h2load), plus decoders that turn each server's answer back into the logits."""

from __future__ import annotations

import http.client
import json
import struct
import subprocess
from pathlib import Path

import numpy as np

GRPC_PATH = "/inference.GRPCInferenceService/ModelInfer"
#: Sends one pre-encoded gRPC message with grpcio and prints the answer's bytes as hex (stderr:
#: the status on failure). Run by whichever Python has grpcio (a peer's virtualenv does).
GRPC_CALL = """
import sys, grpc
port, path, message = sys.argv[1], sys.argv[2], bytes.fromhex(sys.stdin.read())
with grpc.insecure_channel("127.0.0.1:" + port) as channel:
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    try:
        print(call(message, timeout=30).hex())
    except grpc.RpcError as exc:
        sys.exit(f"{exc.code().name}: {exc.details()}")
"""


# ---- HTTP bodies


def infer_head(name: str, x: np.ndarray, output: str, *, binary: bool) -> dict[str, object]:
    tensor: dict[str, object] = {"name": name, "shape": list(x.shape), "datatype": "FP32"}
    if binary:
        tensor["parameters"] = {"binary_data_size": x.nbytes}
    else:
        tensor["data"] = x.ravel().tolist()
    requested = {"name": output, "parameters": {"binary_data": binary}}
    return {"inputs": [tensor], "outputs": [requested]}


def binary_body(name: str, x: np.ndarray, output: str) -> tuple[bytes, int]:
    """The body and its JSON head's length (Inference-Header-Content-Length)."""
    head = json.dumps(infer_head(name, x, output, binary=True), separators=(",", ":")).encode()
    return head + np.ascontiguousarray(x, dtype="<f4").tobytes(), len(head)


def json_body(name: str, x: np.ndarray, output: str) -> bytes:
    return json.dumps(infer_head(name, x, output, binary=False), separators=(",", ":")).encode()


def post(port: int, path: str, body: bytes, header_length: int | None) -> tuple[int, bytes, int]:
    """One POST as the bench's wrk script sends it; returns status, body and the answer's
    Inference-Header-Content-Length (-1: none)."""
    headers = {"Content-Type": "application/json"}
    if header_length is not None:
        headers = {"Inference-Header-Content-Length": str(header_length)}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        length = response.getheader("Inference-Header-Content-Length")
        return response.status, response.read(), int(length) if length else -1
    finally:
        conn.close()


def logits_from_http(body: bytes, header_length: int) -> np.ndarray:
    """The first output of a v2 answer, binary (blob after the JSON head) or JSON ``data``."""
    head = json.loads(body[:header_length] if header_length >= 0 else body)
    (output, *_) = head["outputs"]
    shape = output["shape"]
    size = (output.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        blob = body[header_length : header_length + int(size)]
        return np.frombuffer(blob, dtype="<f4").reshape(shape)
    return np.asarray(output["data"], dtype=np.float32).reshape(shape)


# ---- gRPC (protobuf wire format: field key = number << 3 | wire type; 2 = length-delimited)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def grpc_request(model: str, name: str, x: np.ndarray, output: str) -> bytes:
    """A ModelInferRequest (model_name 1, inputs 5, outputs 6, raw_input_contents 7) in a gRPC
    frame: 1 byte "not compressed", 4 bytes big-endian length, the message."""
    shape = b"".join(_varint(dim) for dim in x.shape)
    tensor = _field(1, name.encode()) + _field(2, b"FP32") + _field(3, shape)
    message = _field(1, model.encode()) + _field(5, tensor) + _field(6, _field(1, output.encode()))
    message += _field(7, np.ascontiguousarray(x, dtype="<f4").tobytes())
    return b"\x00" + struct.pack(">I", len(message)) + message


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(number, value) of each field: varints as ints, length-delimited ones as bytes."""
    fields: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(data, i)
            fields.append((number, value))
        elif wire == 2:
            length, i = _read_varint(data, i)
            fields.append((number, data[i : i + length]))
            i += length
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} (field {number})")
    return fields


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return value, i


def logits_from_grpc(message: bytes) -> np.ndarray:
    """The first output of a ModelInferResponse (outputs 5, raw_output_contents 6; or the
    output's typed fp32_contents 6 inside contents 5)."""
    fields = _fields(message)
    (tensor, *_) = [v for n, v in fields if n == 5 and isinstance(v, bytes)]
    parts = _fields(tensor)
    shape_bytes = b"".join(v for n, v in parts if n == 3 and isinstance(v, bytes))
    shape, i = [], 0
    while i < len(shape_bytes):
        dim, i = _read_varint(shape_bytes, i)
        shape.append(dim)
    raw = [v for n, v in fields if n == 6 and isinstance(v, bytes)]
    if raw:
        return np.frombuffer(raw[0], dtype="<f4").reshape(shape)
    contents = b"".join(v for n, v in parts if n == 5 and isinstance(v, bytes))
    fp32 = b"".join(v for n, v in _fields(contents) if n == 6 and isinstance(v, bytes))
    return np.frombuffer(fp32, dtype="<f4").reshape(shape)


def grpc_call(python: Path, port: int, frame: bytes) -> np.ndarray:
    """Send one framed ModelInfer message with grpcio (in ``python``) and decode the logits."""
    done = subprocess.run(
        [str(python), "-c", GRPC_CALL, str(port), GRPC_PATH],
        input=frame[5:].hex(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gRPC ModelInfer failed: {done.stderr.strip()[-300:]}")
    return logits_from_grpc(bytes.fromhex(done.stdout.strip()))
