"""Fixtures for deployment tests: real `python -m service` processes on loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: One image of the digits data (8x8, raw 0..16): the body of every /predict the tests send.
PREDICT_BODY = (
    b'{"inputs": [[0,0,5,13,9,1,0,0],[0,0,13,15,10,15,5,0],[0,3,15,2,0,11,8,0],'
    b"[0,4,12,0,0,8,8,0],[0,5,8,0,0,9,8,0],[0,4,11,0,1,12,7,0],[0,2,14,5,10,12,0,0],"
    b"[0,0,6,13,10,0,0,0]]}"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``check`` until true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s} s")
        time.sleep(0.05)


def status_of(url: str) -> int:
    """HTTP status of a GET, or 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except OSError:
        return 0


class Replica:
    """One `python -m service` process on its own port, output to a log file."""

    def __init__(self, model: Path, log: Path, **settings: str) -> None:
        self.port = free_port()
        self.log = log
        env = {
            **{
                key: value for key, value in os.environ.items() if not key.startswith("RELU_SERVE_")
            },
            "RELU_SERVE_MODEL_PATH": str(model),
            "RELU_SERVE_HOST": "127.0.0.1",
            "RELU_SERVE_PORT": str(self.port),
            "RELU_SERVE_GRPC_PORT": "0",  # replicas share the host: no default gRPC port
            "RELU_SERVE_INTRA_OP_THREADS": "1",
            "RELU_SERVE_MAX_IMAGES": "16",  # a short warm-up
            "RELU_SERVE_LOG_LEVEL": "warning",
            **{f"RELU_SERVE_{key.upper()}": value for key, value in settings.items()},
        }
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"service exited {self.process.returncode}: {self.log.read_text()}")
            return status_of(f"{self.url}/readyz") == 200

        wait_until(ready, timeout_s, f"{self.url}/readyz answering 200")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def replicas(dry_run_model: Path, tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    """Start service processes serving the dry-run model; all are killed at teardown."""
    started: list[Replica] = []

    def start(**settings: str) -> Replica:
        replica = Replica(dry_run_model, tmp_path / f"service-{len(started)}.log", **settings)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()
