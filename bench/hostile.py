"""Hostile requests against a real relu-serve: /healthz stalls, peak RSS, then a mixed soak.

    python -m bench.hostile [--soak-s 600] [--clients 8]

Part 1 sends the largest and costliest requests the default limits allow, one at a time, while
a prober asks /healthz every 10 ms on its own connection: for each, the answer, the longest
/healthz wait during it, and the worker's peak RSS over it (VmHWM, reset before each). Part 2
is a soak: clients on kept-alive connections send a mix of valid and invalid requests; it
counts answers by status, 5xx and broken connections, and compares RSS at the start and end.
"""

from __future__ import annotations

import argparse
import http.client
import io
import random
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from bench import _common as c

JSON_CT = {"content-type": "application/json"}
NPY_CT = {"content-type": "application/x-npy"}
NPZ_CT = {"content-type": "application/x-npz"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz_deflated(x: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=x)
    return buffer.getvalue()


def npz_bzip2() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("x.npy", npy(np.zeros(8 * 1024 * 1024)))
    return buffer.getvalue()


def png(size: int, value: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (size, size), value).save(buffer, "PNG")
    return buffer.getvalue()


def multipart(files: list[bytes]) -> Request:
    boundary = "relu-serve-bench"
    parts = []
    for i, data in enumerate(files):
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{i}.png"\r\nContent-Type: image/png\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    return Request("POST", "/predict", headers, body)


def json_body(max_bytes: int) -> bytes:
    """The largest /activate JSON body under ``max_bytes``: 'x' full of 12-character numbers."""
    count = (max_bytes - 200) // 12
    numbers = b",".join([b"0.123456789"] * count)
    return b'{"function": "gelu", "outputs": ["value", "grad"], "x": [' + numbers + b"]}"


def heavy_cases() -> dict[str, Request]:
    """The costliest requests the default limits let through, and a few refused ones."""
    elements = (128 * 1024 * 1024 - 128) // 8  # float64 within max_body_bytes
    return {
        "JSON /activate, 4 MiB (max_json_bytes), gelu value+grad": Request(
            "POST", "/activate", JSON_CT, json_body(4 * 1024 * 1024)
        ),
        ".npy /activate, 128 MiB float64, gelu value+grad (.npz answer)": Request(
            "POST", "/activate?function=gelu", NPY_CT, npy(np.linspace(-5, 5, elements))
        ),
        ".npy /activate, 64 MiB float32, relu value (.npy answer)": Request(
            "POST",
            "/activate?function=relu&outputs=value",
            NPY_CT,
            npy(np.zeros(16 * 1024 * 1024, np.float32)),
        ),
        ".npz /activate, deflate to 128 MiB from a small body": Request(
            "POST",
            "/activate?function=relu&outputs=value",
            NPZ_CT,
            npz_deflated(np.zeros(elements)),
        ),
        ".npz /activate, bzip2 (refused unread)": Request(
            "POST", "/activate?function=relu", NPZ_CT, npz_bzip2()
        ),
        "PNG 4096x4096 upload (max_image_pixels)": multipart([png(4096)]),
        "1024 PNGs of 128x128 (max_request_pixels)": multipart([png(128, 9)] * 1024),
        "PNG declaring 4096x4096 x 2 (refused from headers)": multipart([png(4096)] * 2),
        "JSON /predict, 1024 digits": Request(
            "POST",
            "/predict",
            JSON_CT,
            b'{"inputs": ' + str([[[5] * 8] * 8] * 1024).encode() + b"}",
        ),
    }


@dataclass
class Prober:
    """GET /healthz every ``period_s`` on one kept-alive connection, latencies recorded."""

    port: int
    period_s: float = 0.01
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Prober:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.is_set():
            start = time.perf_counter()
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            self.latencies.append(time.perf_counter() - start)
            time.sleep(self.period_s)


def send(port: int, request: Request, timeout_s: float = 300) -> tuple[int, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    start = time.perf_counter()
    connection.request(request.method, request.path, request.body, request.headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, time.perf_counter() - start


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def stalls(server: c.Server) -> None:
    pid, port = server.process.pid, server.port
    print(
        f"\n{'request':62} {'status':>6} {'time':>8} {'/healthz p99':>12} {'max':>8} "
        f"{'peak RSS (over the RSS before)':>30}"
    )
    for name, request in heavy_cases().items():
        send(port, Request("GET", "/healthz", {}, b""))
        before = server.rss_mb()
        reset_peak(pid)
        with Prober(port) as prober:
            status, seconds = send(port, request)
            time.sleep(0.05)
        waits = np.array(prober.latencies) * 1000
        peak = peak_rss_mb(pid)
        print(
            f"{name:62} {status:>6} {seconds * 1000:>6.0f}ms {np.percentile(waits, 99):>10.1f}ms "
            f"{waits.max():>6.1f}ms {peak:>10.0f} MiB (+{peak - before:.0f})",
            flush=True,
        )


def mix() -> list[Request]:
    """Small requests, half of them wrong in one of the ways the hardening issue lists."""
    digit = str([[5] * 8] * 8).encode()
    bad_header = (
        b"\x93NUMPY\x01\x00\x30\x00{'descr': '<f3', 'fortran_order': False, 'shape': (2,), }\n"
    )
    return [
        Request("POST", "/predict", JSON_CT, b'{"inputs": ' + digit + b"}"),
        Request("POST", "/predict?top_k=2", NPY_CT, npy(np.full((4, 8, 8), 3, np.float32))),
        Request("POST", "/activate", JSON_CT, b'{"function": "silu", "x": [[1, -2], [3, 4]]}'),
        multipart([png(8, 7)]),
        Request("GET", "/model", {}, b""),
        Request("POST", "/predict", NPY_CT, bad_header),
        Request("POST", "/activate?function=relu", NPZ_CT, npz_bzip2()),
        Request("POST", "/predict", JSON_CT, b'{"inputs": ' + digit + b', "top_k": true}'),
        Request("POST", "/predict", JSON_CT, b'{"inputs": [' * 600 + b"]" * 600 + b"}"),
        multipart([png(8)[:40]]),
        Request("POST", "/predict", {"content-type": "text/plain"}, b"hello"),
        Request("POST", "/activate", JSON_CT, b'{"function": "gelu", "x": [1, [2]]}'),
    ]


def soak(server: c.Server, seconds: float, clients: int) -> None:
    requests = mix()
    statuses: Counter[int] = Counter()
    broken = Counter[str]()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        while time.monotonic() < deadline:
            request = rng.choice(requests)
            try:
                connection.request(request.method, request.path, request.body, request.headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    broken[type(exc).__name__] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                continue
            with lock:
                statuses[status] += 1

    warm(server, requests)
    start_mb = server.rss_mb()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    end_mb = server.rss_mb()
    total = sum(statuses.values())
    errors = sum(n for s, n in statuses.items() if s >= 500)
    print(f"\nsoak: {seconds:.0f} s, {clients} kept-alive clients, {total} requests")
    print(f"  answers by status: {dict(sorted(statuses.items()))}")
    print(f"  5xx: {errors}; broken connections: {sum(broken.values())} {dict(broken)}")
    print(f"  RSS {start_mb:.1f} -> {end_mb:.1f} MiB ({(end_mb / start_mb - 1) * 100:+.1f} %)")


def warm(server: c.Server, requests: list[Request]) -> None:
    for _ in range(20):
        for request in requests:
            send(server.port, request)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--soak-s", type=float, default=600.0, help="soak duration (s)")
    parser.add_argument("--clients", type=int, default=8, help="soak connections")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = work / "relu_cnn.onnx"
        export: Callable[..., object] = subprocess.run
        export(
            [sys.executable, "-m", "model_export", "--dry-run", "--out", str(model)],
            check=True,
            capture_output=True,
        )
        port = c.free_port()
        env = {
            "RELU_SERVE_MODEL_PATH": str(model),
            "RELU_SERVE_PORT": str(port),
            "RELU_SERVE_LOG_LEVEL": "warning",
        }
        with c.serve(
            "relu-serve",
            [c.PYTHON, "-m", "service"],
            env=env,
            port=port,
            ready_path="/readyz",
            log_dir=work,
        ) as server:
            stalls(server)
            soak(server, args.soak_s, args.clients)
            tail = server.log_tail(5)
    print(f"\nlast lines of the server log:\n{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
