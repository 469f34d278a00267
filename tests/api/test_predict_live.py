"""Against a real `python -m service` (uvicorn): several workers, and the body limit on the wire."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from service.api.schemas.predict import ZERO
from service.config import usable_cpus
from tests.live_server import live_server

pytestmark = pytest.mark.slow


def wait_every_worker_ready(base: str, timeout_s: float = 180.0) -> None:
    """live_server saw one worker ready; 20 ready answers in a row on new connections (each
    accepted by whichever worker takes it) make it very likely that the other is too."""
    deadline = time.monotonic() + timeout_s
    streak = 0
    while streak < 20:
        assert time.monotonic() < deadline, f"not every worker ready within {timeout_s} s"
        ready = httpx.get(f"{base}/readyz", timeout=10).status_code == 200
        streak = streak + 1 if ready else 0
        if not ready:
            time.sleep(0.2)


def test_two_workers_serve_and_split_the_cpus(dry_run_model: Path) -> None:
    with live_server(dry_run_model, workers="2", max_body_bytes="4096") as base:
        wait_every_worker_ready(base)
        runtime = httpx.get(f"{base}/model").json()["runtime"]
        assert runtime["intra_op_threads"] == max(1, usable_cpus() // 2)
        response = httpx.post(f"{base}/predict", json={"inputs": ZERO})
        assert response.status_code == 200, response.text

        # A declared Content-Length over the limit is answered without the body being sent.
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-npy\r\n"
                b"Content-Length: 1000000000\r\n\r\n"
            )
            reply = b""
            while b"}" not in reply and (chunk := sock.recv(4096)):
                reply += chunk
        text = reply.decode()
        assert text.startswith("HTTP/1.1 413"), text
        assert '{"detail":"the request body exceeds the limit of 4096 bytes",' in text
