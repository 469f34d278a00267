"""Hostile clients against a real server: slow headers and bodies, huge headers, a 500."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from service.app import create_app
from service.config import Settings
from service.server import GuardedHttpProtocol
from tests.live_server import free_port, live_server

#: Bounded waits, sized for a busy machine; the server's timeouts under test are 1 s.
PATIENCE_S = 20.0


@pytest.fixture(scope="module")
def base(dry_run_model: Path) -> Iterator[str]:
    with live_server(
        dry_run_model, header_timeout_s="1", body_timeout_s="1", max_header_bytes="8192"
    ) as url:
        yield url


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=PATIENCE_S)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by PATIENCE_S)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
    raise AssertionError(f"the connection was still open after {PATIENCE_S} s")


def test_slow_headers_get_408_and_are_closed_while_others_are_served(base: str) -> None:
    slow = [connect(base) for _ in range(8)]
    for sock in slow:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    assert httpx.get(f"{base}/healthz", timeout=PATIENCE_S).status_code == 200
    for sock in slow:
        with sock:
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
        assert b"connection: close" in answer


def test_a_connection_that_sends_nothing_is_closed(base: str) -> None:
    with connect(base) as sock:
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408")


def test_a_declared_body_never_sent_gets_408(base: str) -> None:
    with connect(base) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"inputs": ['
        )
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_headers_over_the_limit_get_431(base: str) -> None:
    with connect(base) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(64):
                sock.sendall(b"X-Padding: " + b"a" * 1000 + b"\r\n")
        except OSError:
            pass  # the server may close while we still send
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), answer


def test_a_kept_alive_connection_serves_request_after_request(base: str) -> None:
    with httpx.Client(base_url=base, timeout=PATIENCE_S) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            time.sleep(0.1)


@pytest.fixture(scope="module")
def broken_app_url(dry_run_model: Path) -> Iterator[str]:
    """The real app in a real uvicorn, plus a route with a bug (the one way to get a 500)."""
    app: FastAPI = create_app(Settings(model_path=dry_run_model))

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=GuardedHttpProtocol, log_level="critical"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + PATIENCE_S
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(PATIENCE_S)


def test_a_500_is_json_with_the_request_id_and_keeps_the_connection(
    broken_app_url: str,
) -> None:
    with connect(broken_app_url) as sock, sock.makefile("rb") as reader:
        sock.sendall(b"GET /bug HTTP/1.1\r\nHost: x\r\nX-Request-ID: bug-1\r\n\r\n")
        status, headers, body = read_response(reader)
        assert status == 500
        assert headers["content-type"] == "application/json"
        assert "connection" not in headers
        assert body == b'{"detail":"internal error","request_id":"bug-1"}'
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(reader)
        assert (status, body) == (200, b'{"status":"alive"}')


def read_response(reader) -> tuple[int, dict[str, str], bytes]:  # type: ignore[no-untyped-def]
    status = int(reader.readline().split()[1])
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, reader.read(int(headers["content-length"]))
