"""The v2 bench's load and report: body files, wrk and h2load runs parsed into one Result shape,
and the printed table with the issue's targets."""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench import _common as c
from bench import peers, v2_wire

if TYPE_CHECKING:
    from bench.v2_vs_peers import Row

#: Requests in flight per connection in the pipelined rows (HTTP/1.1 pipelining; one gRPC
#: ModelStreamInfer stream per connection, as tritonclient's async_stream_infer sends them).
PIPELINE = 16
STREAM_METHOD = "/inference.GRPCInferenceService/ModelStreamInfer"


@dataclass(frozen=True)
class Result:
    ok_per_s: float
    p50_ms: float | None  # wrk only; h2load reports the mean
    p99_ms: float | None
    mean_ms: float | None
    errors: int
    duration_s: float


@dataclass(frozen=True)
class Bodies:
    directory: Path
    http: dict[tuple[str, int], tuple[bytes, int | None]]  # (kind, images) -> body, head length
    grpc: bytes  # one framed ModelInferRequest, 1 image


def ms(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else f"{'-':>8}"


def export_model(directory: Path) -> Path:
    """A dry-run export of the default model when no trained one is there (same graph)."""
    path = directory / "relu_cnn.onnx"
    argv = [c.PYTHON, "-m", "model_export", "--dry-run", "--out", str(path)]
    print(f"no {path.name} in models/: exporting one ({' '.join(argv[1:])})", flush=True)
    subprocess.run(argv, cwd=c.ROOT, check=True, capture_output=True)
    return path


def write_bodies(
    directory: Path, model: str, name: str, output: str, batches: dict[int, np.ndarray]
) -> Bodies:
    http: dict[tuple[str, int], tuple[bytes, int | None]] = {}
    for images, x in batches.items():
        body, head = v2_wire.binary_body(name, x, output)
        http["binary", images] = (body, head)
        http["json", images] = (v2_wire.json_body(name, x, output), None)
    for (kind, images), (body, _) in http.items():
        (directory / f"v2_{kind}_{images}.body").write_bytes(body)
    grpc = v2_wire.grpc_request(model, name, batches[1], output)
    (directory / "v2_grpc_1.body").write_bytes(grpc)
    (directory / "v2_grpc_stream.body").write_bytes(grpc * PIPELINE)
    return Bodies(directory, http, grpc)


def wrk(
    port: int,
    path: str,
    bodies: Bodies,
    kind: str,
    images: int,
    connections: int,
    duration_s: float,
) -> Result:
    """1 s of warm-up, then ``duration_s`` of wrk (bench/wrk/v2_body.lua) on the load core."""
    _, head = bodies.http[kind, images]
    env = {"BENCH_PATH": path}
    if head is not None:
        env["BENCH_HEADER_LENGTH"] = str(head)
    url, body = f"http://127.0.0.1:{port}", f"v2_{kind}_{images}.body"

    def run(seconds: float, check: bool) -> c.WrkResult:
        result, failure = c.run_wrk(
            "v2_body.lua",
            url,
            connections=connections,
            duration_s=seconds,
            body_dir=bodies.directory,
            body=body,
            check=check,
            extra_env=env,
        )
        if failure:
            raise RuntimeError(f"failed answer under load: {failure}")
        return result

    run(1, check=True)  # warm-up that also looks at every answer's status
    r = run(duration_s, check=False)
    return Result(r.ok_per_s, r.p50_ms, r.p99_ms, None, r.errors, r.duration_s)


def h2load(
    port: int, path: str, bodies: Bodies, kind: str, connections: int, duration_s: float
) -> Result:
    """h2load on the load core, the 1-image request: ``grpc`` = unary ModelInfer over HTTP/2
    (one call in flight per connection), ``grpc-stream`` = one ModelStreamInfer stream per
    connection carrying PIPELINE requests at once, ``h1`` = the binary v2 request over
    HTTP/1.1, ``h1-pipelined`` = the same, PIPELINE pipelined per connection. req/s counts
    inference requests (a stream's PIPELINE each); the mean is h2load's, per stream."""
    pipeline, in_flight = (PIPELINE, 1) if kind == "grpc-stream" else (1, 1)
    if kind.startswith("grpc"):
        body = "v2_grpc_stream.body" if kind == "grpc-stream" else "v2_grpc_1.body"
        method = STREAM_METHOD if kind == "grpc-stream" else v2_wire.GRPC_PATH
        url, extra = f"http://127.0.0.1:{port}{method}", []
        headers = ["content-type: application/grpc", "te: trailers"]
    else:
        _, head = bodies.http["binary", 1]
        body, url = "v2_binary_1.body", f"http://127.0.0.1:{port}{path}"
        headers, extra = [f"inference-header-content-length: {head}"], ["--h1"]
        in_flight = PIPELINE if kind == "h1-pipelined" else 1
    argv = ["h2load", *extra, "-t1", f"-c{connections}", f"-m{in_flight}", "--warm-up-time", "1"]
    argv += ["-D", str(max(1, round(duration_s))), "-d", str(bodies.directory / body)]
    for header in headers:
        argv += ["-H", header]
    done = subprocess.run(
        c.pinned(c.LOAD_CPU, [*argv, url]),
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
        check=False,
    )
    result = parse_h2load(done.stdout, done.stderr)
    return dataclasses.replace(result, ok_per_s=result.ok_per_s * pipeline)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_h2load(stdout: str, stderr: str = "") -> Result:
    finished = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", stdout)
    counts = re.search(r"requests: .*? (\d+) succeeded, (\d+) failed, (\d+) errored", stdout)
    timing = re.search(r"time for request:\s+\S+?\s+\S+?\s+([\d.]+)(us|ms|s)\b", stdout)
    if not (finished and counts):
        raise RuntimeError(f"h2load gave no result: {(stdout + stderr).strip()[-400:]}")
    succeeded, failed, errored = (int(g) for g in counts.groups())
    # h2load's "succeeded" includes 4xx/5xx answers: count the 2xx ones as the successes.
    statuses = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", stdout)
    if statuses:
        ok, *others = (int(g) for g in statuses.groups())
        succeeded, failed = ok, failed + sum(others)
    seconds = float(finished[1])
    mean = float(timing[1]) * _UNITS[timing[2]] if timing else None
    seconds = max(seconds, 1e-9)
    return Result(succeeded / seconds, None, None, mean, failed + errored, seconds)


# ---- report


def report(
    rows: list[Row],
    versions: dict[str, str],
    inproc64: float,
    args: argparse.Namespace,
    model: Path,
    elapsed_s: float,
) -> None:
    print(
        f"\nv2 bench: {model.name}, {args.duration:g} s per row, median of {args.rounds} "
        f"round(s) (all servers up, each kind on every server in turn), each server on core "
        f"{c.SERVER_CPU} (one process, 1 ONNX Runtime thread), load on core {c.LOAD_CPU}; "
        f"{elapsed_s:.0f} s"
    )
    print(f"{'server':22} {'request':22} {'req/s':>9} {'images/s':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'mean ms':>8} {'errors':>6}")  # fmt: skip
    for row in rows:
        who = f"{row.server} {versions.get(row.server, '')}".strip()
        r = row.result
        if r is None:
            why = (row.failure or "").splitlines()[0][:100]
            print(f"{who:22} {row.scenario.label:22} failed: {why}")
            continue
        images = f"{row.images_per_s:9.0f}" if row.scenario.images > 1 else f"{'':9}"
        print(f"{who:22} {row.scenario.label:22} {r.ok_per_s:9.1f} {images} {ms(r.p50_ms)} "
              f"{ms(r.p99_ms)} {ms(r.mean_ms)} {r.errors:6d}")  # fmt: skip
    print("wrk: p50/p99; h2load: mean only (it prints no percentiles). Notes:")
    for peer in peers.PEERS:
        if peer.key in versions:
            print(f"  {peer.note}")
    print(
        f"in-process batch 64 (ONNX Runtime alone, core {c.SERVER_CPU}, best of the runs before "
        f"the load and after each round): {inproc64:.0f} images/s"
    )
    print_targets(rows, inproc64)


def _find(rows: list[Row], server: str, label: str) -> Result | None:
    found = [r.result for r in rows if r.server == server and r.scenario.label == label]
    return found[0] if found else None


def print_targets(rows: list[Row], inproc64: float) -> None:
    ours = _find(rows, "relu-serve", "binary x1 c16")
    peers = [
        (key, r)
        for key, label in (("kserve", "binary x1 c16"), ("mlserver", "JSON x1 c16"))
        if (r := _find(rows, key, label)) is not None
    ]
    best = max(peers, key=lambda p: p[1].ok_per_s, default=None)
    x64 = _find(rows, "relu-serve", "binary x64 c16")
    grpc, h1 = (
        _find(rows, "relu-serve", "gRPC h2load x1 c16"),
        _find(rows, "relu-serve", "binary h2load x1 c16"),
    )
    stream, piped = (
        _find(rows, "relu-serve", f"gRPC stream h2load p{PIPELINE} x1 c16"),
        _find(rows, "relu-serve", f"binary h2load p{PIPELINE} x1 c16"),
    )
    targets = [
        (
            f"relu-serve binary c16 req/s vs the better peer ({best[0] if best else '-'})",
            ours.ok_per_s / best[1].ok_per_s if ours and best and best[1].ok_per_s else None,
            5.0,
        ),
        (
            "relu-serve binary c16 p50 vs that peer's p50 (lower: < 1)",
            ours.p50_ms / best[1].p50_ms
            if ours and best and ours.p50_ms and best[1].p50_ms
            else None,
            -1.0,
        ),
        (
            "relu-serve 64-image binary images/s vs in-process b64",
            (ours64 * 64) / inproc64 if x64 and (ours64 := x64.ok_per_s) else None,
            0.6,
        ),
        (
            "relu-serve unary gRPC vs HTTP/1.1 binary req/s (h2load c16, 1 in flight each)",
            grpc.ok_per_s / h1.ok_per_s if grpc and h1 and h1.ok_per_s else None,
            1.0,
        ),
        (
            f"relu-serve gRPC stream vs HTTP/1.1 pipelined req/s (h2load c16, {PIPELINE} in "
            "flight each)",
            stream.ok_per_s / piped.ok_per_s if stream and piped and piped.ok_per_s else None,
            1.0,
        ),
        (
            f"relu-serve gRPC stream ({PIPELINE} in flight) vs HTTP/1.1 (1 in flight) req/s",
            stream.ok_per_s / h1.ok_per_s if stream and h1 and h1.ok_per_s else None,
            1.0,
        ),
    ]
    print("\ntargets (ratios from this run):")
    for what, value, bound in targets:
        if value is None:
            print(f"  n/a   {what}: not measured in this run")
            continue
        passed = value < 1 if bound < 0 else value >= bound
        sign = "< 1" if bound < 0 else f">= {bound:g}"
        print(f"  {'PASS' if passed else 'FAIL'}  {what} {sign}: {value:.2f}x")
