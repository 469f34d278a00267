"""KServe v2 over HTTP and gRPC vs /predict, side by side in one run, and big batches vs in-process.

    python -m bench.v2 [--duration 5] [--connections 16]

One relu-serve (dry-run digits model, server core) serves all three ways. Each row is one load
generator on the load core with the same closed loop (a fixed number of requests in flight):
``py`` rows use one asyncio client for the three transports (raw HTTP/1.1 keep-alive for HTTP,
grpc.aio for gRPC, requests serialised once), so they compare the server paths with the same
client cost; ``wrk`` rows (HTTP only) show what a C load generator gets. Bodies are what
tritonclient sends (binary tensors, no Content-Type) and a numpy.save .npy for /predict.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bench import _common as c
from bench import v2_wire

PREDICT = "/predict"
INFER = "/v2/models/relu_cnn/infer"
GRPC_METHOD = "/inference.GRPCInferenceService/ModelInfer"


@dataclass
class Result:
    label: str
    requests: int
    seconds: float
    p50_ms: float
    images: int

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds


def npy_body(images: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, images)
    return buffer.getvalue()


def grpc_body(images: np.ndarray) -> bytes:
    from service.grpc.proto import relu_serve_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name="relu_cnn")
    request.inputs.add(name="input", datatype="FP32", shape=list(images.shape))
    request.outputs.add(name="logits")
    request.raw_input_contents.append(images.tobytes())
    return request.SerializeToString()


def http_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _http_loop(port: int, request: bytes, until: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (started := time.perf_counter()) < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            length = next(
                int(line[15:])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def _grpc_loops(port: int, body: bytes, until: float, conns: int) -> list[float]:
    import grpc

    latencies: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        # bytes in, bytes out: each request serialised once, before the run
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(GRPC_METHOD)

        async def loop() -> None:
            while (started := time.perf_counter()) < until:
                await call(body)
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(loop() for _ in range(conns)))
    return latencies


def drive_py(
    kind: str, port: int, payload: bytes, conns: int, duration_s: float
) -> tuple[int, float]:
    """Requests done and p50 (ms) of ``conns`` closed loops for ``duration_s`` (after 1 s warm-up)."""

    async def run(seconds: float) -> list[float]:
        until = time.perf_counter() + seconds
        if kind == "grpc":
            return await _grpc_loops(port, payload, until, conns)
        latencies: list[float] = []
        await asyncio.gather(*(_http_loop(port, payload, until, latencies) for _ in range(conns)))
        return latencies

    with c.on_core(c.LOAD_CPU):
        asyncio.run(run(1.0))
        latencies = asyncio.run(run(duration_s))
    return len(latencies), statistics.median(latencies) * 1e3


def in_process_images_per_s(model: Path, batch: int) -> float:
    """The classifier's own run (what Inference calls), on the server core."""
    from service.classifier.model import Classifier
    from service.config import Settings

    classifier = Classifier.from_settings(Settings(model_path=model, intra_op_threads=1))
    images = np.random.default_rng(0).random((batch, 1, 8, 8), dtype=np.float32)
    with c.on_core(c.SERVER_CPU):
        seconds = c.seconds_per_call(lambda: classifier.predict(images))
    return batch / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per row and round")
    parser.add_argument("--connections", type=int, default=16, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every row (medians)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-v2-") as tmp:
        return _run(Path(tmp), args.duration, args.connections, args.rounds)


Measure = Callable[[], tuple[int, float, float]]  # -> requests, seconds, p50 ms


def _run(work: Path, duration_s: float, conns: int, rounds: int) -> int:
    model = work / "digits.onnx"
    export = [c.PYTHON, "-m", "model_export", "--dry-run", "--out", str(model)]
    subprocess.run(export, cwd=c.ROOT, check=True, capture_output=True)
    one = np.random.default_rng(1).uniform(0, 16, (1, 1, 8, 8)).astype(np.float32)
    many = np.random.default_rng(2).uniform(0, 16, (64, 1, 8, 8)).astype(np.float32)
    for name, batch in (("v2_1.bin", one), ("v2_64.bin", many)):
        payload, length = v2_wire.binary_body("input", batch, "logits")
        (work / name).write_bytes(payload)
        (work / f"{name}.len").write_text(str(length))
    (work / "predict_1.npy").write_bytes(npy_body(one))
    port, grpc_port = c.free_port(), c.free_port()
    env = c.relu_env(port, model_path=str(model), grpc_port=str(grpc_port))
    server = [c.PYTHON, "-m", "service"]
    with c.serve("relu-serve", server, env=env, port=port, ready_path="/readyz", log_dir=work):
        rows = _rows(work, port, grpc_port, conns, duration_s, one, many)
        results: dict[str, list[Result]] = {label: [] for label, _, _ in rows}
        references = []
        for round_ in range(1, rounds + 1):
            print(f"round {round_}/{rounds}", flush=True)
            for label, images, measure in rows:
                count, seconds, p50 = measure()
                results[label].append(Result(label, count, seconds, p50, images))
                _print(results[label][-1])
            references.append(in_process_images_per_s(model, 64))
            print(f"in-process classifier.predict, batch 64: {references[-1]:,.0f} images/s")
    _summary(results, statistics.median(references), rounds)
    return 0


def _rows(
    work: Path,
    port: int,
    grpc_port: int,
    conns: int,
    duration_s: float,
    one: np.ndarray,
    many: np.ndarray,
) -> list[tuple[str, int, Measure]]:
    """Every row: its label, images per request and how to measure it once."""
    npy = http_request(PREDICT, npy_body(one), {"Content-Type": "application/x-npy"})
    py = [
        ("/predict .npy 1 image", "http", port, npy, 1),
        ("v2 HTTP binary 1 image", "http", port, http_request(INFER, *_v2(one)), 1),
        ("v2 gRPC raw 1 image", "grpc", grpc_port, grpc_body(one), 1),
        ("v2 HTTP binary 64 images", "http", port, http_request(INFER, *_v2(many)), 64),
        ("v2 gRPC raw 64 images", "grpc", grpc_port, grpc_body(many), 64),
    ]
    rows: list[tuple[str, int, Measure]] = []
    for n in sorted({1, conns}):
        for label, kind, target, payload, images in py:
            measure = partial(_measure_py, kind, target, payload, n, duration_s)
            rows.append((f"py  {label} c{n}", images, measure))
    if c.missing_tools():
        return rows
    for label, script, body, images in (
        ("/predict .npy 1 image", "predict_npy.lua", "predict_1.npy", 1),
        ("v2 HTTP binary 1 image", "v2_infer.lua", "v2_1.bin", 1),
        ("v2 HTTP binary 64 images", "v2_infer.lua", "v2_64.bin", 64),
    ):
        measure = partial(_measure_wrk, work, port, script, body, conns, duration_s)
        rows.append((f"wrk {label} c{conns}", images, measure))
    return rows


def _measure_py(
    kind: str, target: int, payload: bytes, conns: int, duration_s: float
) -> tuple[int, float, float]:
    count, p50 = drive_py(kind, target, payload, conns, duration_s)
    return count, duration_s, p50


def _measure_wrk(
    work: Path, port: int, script: str, body: str, conns: int, duration_s: float
) -> tuple[int, float, float]:
    url = f"http://127.0.0.1:{port}"
    result, failure = c.run_wrk(
        script, url, connections=conns, duration_s=duration_s, body_dir=work, body=body
    )
    if failure or result.errors:
        raise RuntimeError(f"{script} {body}: {failure or result}")
    return result.requests, result.duration_s, result.p50_ms


def _summary(results: dict[str, list[Result]], reference: float, rounds: int) -> None:
    print(f"\nmedians of {rounds} rounds (in-process batch 64: {reference:,.0f} images/s)")
    for label, runs in results.items():
        per_s = statistics.median(r.per_s for r in runs)
        p50 = statistics.median(r.p50_ms for r in runs)
        line = f"{label:36} {per_s:8,.0f} req/s  p50 {p50:7.3f} ms"
        if runs[0].images > 1:
            images = per_s * runs[0].images
            line += f"  {images:9,.0f} images/s = {images / reference:.2f}x in-process"
        print(line)


def _v2(images: np.ndarray) -> tuple[bytes, dict[str, str]]:
    body, length = v2_wire.binary_body("input", images, "logits")
    return body, {"Inference-Header-Content-Length": str(length)}


def _print(row: Result) -> None:
    images = f"  {row.per_s * row.images:9,.0f} images/s" if row.images > 1 else ""
    print(f"{row.label:36} {row.per_s:8,.0f} req/s  p50 {row.p50_ms:7.3f} ms{images}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
