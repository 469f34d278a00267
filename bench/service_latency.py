"""Classifier service figures: cold start to ready, single-image /predict p50/p99, 64-image .npy images/s.

    .venv/bin/python -m bench.service_latency [--model models/relu_cnn.onnx] [--requests 2000]

Starts `python -m service` as a user would (one worker, default settings) on a free loopback
port and measures it with one keep-alive client (stdlib http.client, so the client costs
little); prints the figures. Not part of the test run.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench import _common as c

ROOT = Path(__file__).resolve().parent.parent


def start(model: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """Start the service; return it and the seconds from spawn until /readyz answered 200."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELU_SERVE_")}
    env.update(
        RELU_SERVE_MODEL_PATH=str(model), RELU_SERVE_PORT=str(port), RELU_SERVE_LOG_LEVEL="warning"
    )
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env)
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the service exited with {process.returncode}")
        try:
            if c.http_get(port, "/readyz")[0] == 200:
                return process, time.perf_counter() - began
        except OSError:
            pass
        if time.perf_counter() - began > 120:
            process.kill()
            raise SystemExit("not ready within 120 s")
        time.sleep(0.005)


def timed_posts(port: int, body: bytes, content_type: str, count: int, warmup: int) -> list[float]:
    """Seconds per request for ``count`` sequential POST /predict on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": content_type}
    times = []
    for i in range(warmup + count):
        began = time.perf_counter()
        conn.request("POST", "/predict", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - began
        if response.status != 200:
            raise SystemExit(f"/predict answered {response.status}: {payload[:200]!r}")
        if i >= warmup:
            times.append(elapsed)
    conn.close()
    return times


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models/relu_cnn.onnx")
    parser.add_argument("--requests", type=int, default=2000, help="single-image requests")
    parser.add_argument("--batches", type=int, default=300, help="64-image requests")
    parser.add_argument("--starts", type=int, default=3, help="cold starts (median reported)")
    args = parser.parse_args()
    if not args.model.exists():
        raise SystemExit(f"{args.model}: no such file; build it with `make model`")

    starts = []
    for _ in range(args.starts - 1):
        process, seconds = start(args.model, c.free_port())
        c.stop(process)
        starts.append(seconds)
    port = c.free_port()
    process, seconds = start(args.model, port)
    starts.append(seconds)
    try:
        rng = np.random.default_rng(0)
        one = rng.integers(0, 17, size=(8, 8)).tolist()
        single = timed_posts(
            port, json.dumps({"inputs": one}).encode(), "application/json", args.requests, 100
        )
        buffer = io.BytesIO()
        np.save(buffer, rng.integers(0, 17, size=(64, 8, 8)).astype(np.float32))
        batch = timed_posts(port, buffer.getvalue(), "application/x-npy", args.batches, 20)
    finally:
        c.stop(process)

    print(f"model: {args.model} ({args.model.stat().st_size / 1024:.0f} KB)")
    print(f"cpus usable: {len(os.sched_getaffinity(0))}")
    print(
        f"cold start to ready: {statistics.median(starts):.2f} s "
        f"(median of {len(starts)}: {', '.join(f'{s:.2f}' for s in starts)})"
    )
    print(
        f"single-image JSON /predict, {len(single)} sequential requests: "
        f"p50 {percentile(single, 50) * 1e3:.2f} ms, p99 {percentile(single, 99) * 1e3:.2f} ms"
    )
    total = sum(batch)
    print(
        f"64-image .npy /predict, {len(batch)} sequential requests: "
        f"{64 * len(batch) / total:,.0f} images/s "
        f"(p50 {percentile(batch, 50) * 1e3:.2f} ms per request)"
    )


if __name__ == "__main__":
    main()
