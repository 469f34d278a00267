"""The server's own refusals (431 headers too large, 408 too slow, 503 past max_connections)
are JSON like every other error: ``{"error": ...}`` under /v2, which tritonclient decodes,
``{"detail": ...}`` elsewhere."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from tests.live_server import live_server

pytestmark = pytest.mark.slow
#: Bounded waits, sized for a busy machine; the server's timeouts under test are 1 s.
PATIENCE_S = 20.0
INFER = b"/v2/models/relu_cnn/infer"


@pytest.fixture(scope="module")
def base(dry_run_model: Path) -> Iterator[str]:
    # Two connections: one held open by a test fills the server (uvicorn counts the one
    # being answered too).
    with live_server(
        dry_run_model,
        max_connections="2",
        header_timeout_s="1",
        body_timeout_s="1",
        max_header_bytes="8192",
    ) as url:
        yield url


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=PATIENCE_S)


def answer_of(sock: socket.socket) -> tuple[bytes, dict[str, str], dict[str, str]]:
    """Status line, headers and JSON body of what the server sends until it closes."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + PATIENCE_S
    while (chunk := sock.recv(65536)) and time.monotonic() < deadline:
        chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return status.encode(), headers, json.loads(body)


@pytest.mark.parametrize(("path", "key"), [(INFER, "error"), (b"/predict", "detail")])
def test_headers_over_the_limit_get_431_as_json(base: str, path: bytes, key: str) -> None:
    with connect(base) as sock:
        sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(64):
                sock.sendall(b"X-Padding: " + b"a" * 1000 + b"\r\n")
        except OSError:
            pass  # the server may close while we still send
        status, headers, body = answer_of(sock)
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert headers["content-type"] == "application/json"
    assert body == {key: "the request headers exceed the limit of 8192 bytes"}


@pytest.mark.parametrize(("path", "key"), [(INFER, "error"), (b"/predict", "detail")])
def test_a_body_never_sent_gets_408_as_json(base: str, path: bytes, key: str) -> None:
    with connect(base) as sock:
        head = b"Host: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        sock.sendall(b"POST " + path + b" HTTP/1.1\r\n" + head + b"{")
        status, _, body = answer_of(sock)
    assert status == b"HTTP/1.1 408 Request Timeout"
    assert body == {key: "the request body did not arrive within 1 s"}


def test_slow_headers_under_v2_get_408_as_json(base: str) -> None:
    with connect(base) as sock:
        sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\n")
        status, _, body = answer_of(sock)
    assert status == b"HTTP/1.1 408 Request Timeout"
    assert body == {"error": "the request headers did not arrive within 1 s"}


def test_past_max_connections_tritonclient_reads_the_503(base: str) -> None:
    client = triton_http.InferenceServerClient(base.removeprefix("http://"))
    tensor = triton_http.InferInput("input", [1, 1, 8, 8], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 1, 8, 8), np.float32))
    try:
        with connect(base) as held:  # the other connection: the server is full
            held.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert held.recv(65536).startswith(b"HTTP/1.1 200")
            with pytest.raises(InferenceServerException, match="connection limit") as error:
                client.infer("relu_cnn", [tensor])
            assert error.value.status() == "503"
            with connect(base) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                status, headers, body = answer_of(sock)
        assert status == b"HTTP/1.1 503 Service Unavailable"
        assert headers["retry-after"] == "1"
        assert body == {
            "detail": "the server is at its connection limit (max_connections); retry shortly"
        }
    finally:
        client.close()


def refused_503s(base: str) -> dict[str, float]:
    """relu_serve_requests_total of route "unmatched", status 503, by method, from one scrape."""
    text = httpx.get(f"{base}/metrics", timeout=PATIENCE_S).text
    return {
        s.labels["method"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "relu_serve_requests_total"
        and s.labels["route"] == "unmatched"
        and s.labels["status"] == "503"
    }


def test_the_503s_past_max_connections_are_counted(base: str) -> None:
    before = refused_503s(base)
    with connect(base) as held:
        held.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert held.recv(65536).startswith(b"HTTP/1.1 200")
        for request in (b"GET /healthz", b"POST /v2/models/relu_cnn/infer", b"PURGE /"):
            with connect(base) as sock:
                sock.sendall(request + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                assert answer_of(sock)[0] == b"HTTP/1.1 503 Service Unavailable"
    after = refused_503s(base)
    moved = {method: after[method] - before.get(method, 0) for method in after}
    assert {method: n for method, n in moved.items() if n} == {"GET": 1, "POST": 1, "other": 1}
