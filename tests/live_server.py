"""A real `python -m service` on a free loopback port, for tests that need a live server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def live_server(
    model_path: Path, timeout_s: float = 120.0, log: Path | None = None, **env: str
) -> Iterator[str]:
    """Start the service as a user would, wait (bounded) for /readyz, yield its base URL.
    With ``log``, the server's output goes to that file (complete once the block ends)."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RELU_SERVE_")}
    environ["RELU_SERVE_GRPC_PORT"] = "0"  # off unless asked for (grpc_port=...): 8001 may be taken
    environ.update(RELU_SERVE_MODEL_PATH=str(model_path), RELU_SERVE_PORT=str(port))
    environ.update(RELU_SERVE_LOG_LEVEL="warning")
    environ.update({f"RELU_SERVE_{k.upper()}": v for k, v in env.items()})
    output = log.open("w") if log is not None else subprocess.PIPE
    process = subprocess.Popen(
        [sys.executable, "-m", "service"],
        env=environ,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited {process.returncode}: {process.stdout}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready within {timeout_s} s")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        if not isinstance(output, int):
            output.close()
