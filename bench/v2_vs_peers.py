"""`make bench`'s v2 section: relu-serve against KServe's Python ModelServer and MLServer on the
Open Inference Protocol, one ONNX file, identical requests, one table with the issue's ratios.

Each server runs on core 0 (one process, one ONNX Runtime thread, no request logging); the load
comes from core 1: wrk (HTTP/1.1, the same body bytes for every server) and h2load (gRPC
ModelInfer with a pre-encoded message, and the same binary HTTP request over HTTP/1.1 for the
like-for-like gRPC vs HTTP ratio). Every body is sent once and its answer checked against the
in-process logits before the load. The peers are installed by bench/peers.py in their own
virtualenvs (.bench/venvs/, cached).

All servers are up at once (only the one under load works) and the rows run in rounds, each
request kind on every server back to back: a noisy spell of the machine then falls on one
round of every server alike, not on one server's whole block. Each row shows its median round
(by req/s; the latencies are that round's), and the in-process reference is timed after every
round (the best is kept).

    python -m bench.v2_vs_peers [--duration 8] [--rounds 3] [--quick]
                                [--servers relu-serve,kserve,mlserver]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bench import _common as c
from bench import peer_load, peers, v2_wire
from bench.peer_load import Result
from service.api.schemas import predict as schemas

MODEL = c.ROOT / "models" / "relu_cnn.onnx"
NAME = "relu_cnn"  # relu-serve's v2 name for the classifier (its metadata name); the peers too
INFER = f"/v2/models/{NAME}/infer"
SERVERS = ("relu-serve", "kserve", "mlserver")


@dataclass(frozen=True)
class Scenario:
    #: The body and the load tool: "binary", "json" (wrk), "h1", "grpc" (h2load, one request
    #: in flight per connection), "h1-pipelined", "grpc-stream" (h2load, peer_load.PIPELINE
    #: requests in flight per connection: HTTP/1.1 pipelining, one ModelStreamInfer stream).
    kind: str
    images: int
    connections: int

    @property
    def label(self) -> str:
        body = {
            "binary": "binary",
            "json": "JSON",
            "h1": "binary h2load",
            "grpc": "gRPC h2load",
            "h1-pipelined": f"binary h2load p{peer_load.PIPELINE}",
            "grpc-stream": f"gRPC stream h2load p{peer_load.PIPELINE}",
        }
        return f"{body[self.kind]} x{self.images} c{self.connections}"


@dataclass
class Row:
    server: str
    scenario: Scenario
    result: Result | None = None
    failure: str | None = None

    @property
    def images_per_s(self) -> float | None:
        return self.result.ok_per_s * self.scenario.images if self.result else None


@dataclass
class Server:
    key: str
    version: str
    argv: list[str]
    env: dict[str, str]
    ready_path: str
    http_port: int
    grpc_port: int
    kinds: tuple[str, ...]  # the bodies it accepts


def scenarios(server: str, quick: bool) -> list[Scenario]:
    binary = "json" if server == "mlserver" else "binary"  # MLServer refuses binary tensors
    rows = [Scenario(binary, 1, conns) for conns in ((16,) if quick else (1, 16))]
    if server == "kserve" and not quick:
        rows.append(Scenario("json", 1, 16))
    rows.append(Scenario(binary, 64, 16))
    if not quick:
        rows.append(Scenario("h1", 1, 16) if binary == "binary" else Scenario("json", 64, 1))
    rows.append(Scenario("grpc", 1, 16))
    if server == "relu-serve":  # the peers serve no ModelStreamInfer: compared with our HTTP
        rows += [Scenario("h1", 1, 16)] if quick else []
        rows += [Scenario("h1-pipelined", 1, 16), Scenario("grpc-stream", 1, 16)]
    return rows


def inputs(model: Path) -> tuple[str, str, np.ndarray, np.ndarray]:
    """Input and output names from the ONNX graph, and the 1- and 64-image batches: the digit
    "0" the /predict docs show (raw 0..16), the batch with a little noise, clipped."""
    session = c.bench_session(str(model))
    (first, *_), (output, *_) = session.get_inputs(), session.get_outputs()
    shape = [dim if isinstance(dim, int) else 1 for dim in first.shape[1:]]
    zero = np.array(schemas.ZERO, dtype=np.float32).reshape(1, *shape)
    noise = np.random.default_rng(0).normal(0, 1, (64, *shape))
    return first.name, output.name, zero, np.clip(zero + noise, 0, 16).astype(np.float32)


def in_process(model: Path, batches: dict[int, np.ndarray]) -> dict[int, tuple[float, np.ndarray]]:
    """Images/s of the ONNX Runtime session alone (relu-serve's settings, server core) and the
    logits every server's answer is checked against."""
    session = c.bench_session(str(model))
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name
    figures = {}
    with c.on_core(c.SERVER_CPU):
        for size, x in batches.items():
            seconds = c.seconds_per_call(partial(session.run, [output], {name: x}))
            figures[size] = (size / seconds, session.run([output], {name: x})[0])
            print(f"in-process batch {size:2}: {seconds * 1e6:8.1f} us per run", flush=True)
    return figures


def relu_serve(model: Path, work: Path) -> Server:
    http, grpc = c.free_port(), c.free_port()
    env = c.relu_env(http, grpc_port=str(grpc), model_path=str(model))
    version = peers.version_of(Path(c.PYTHON), "relu-serve")
    argv = [c.PYTHON, "-m", "service"]
    return Server("relu-serve", version, argv, env, "/readyz", http, grpc, ("binary", "json"))


def peer(key: str, model: Path, work: Path) -> Server:
    """The peer's virtualenv (created on first use) and its command line."""
    spec = peers.KSERVE if key == "kserve" else peers.MLSERVER
    python = peers.ensure_venv(spec)
    http, grpc = c.free_port(), c.free_port()
    ready = f"/v2/models/{NAME}/ready"
    version = peers.version_of(python, key)
    if key == "kserve":
        argv = peers.kserve_argv(python, work, http, grpc)
        env = {"BENCH_MODEL_NAME": NAME, "BENCH_MODEL_PATH": str(model)}
        return Server(key, version, argv, env, ready, http, grpc, ("binary", "json"))
    argv = peers.mlserver_argv(python, work, NAME, model, (http, grpc))
    return Server(key, version, argv, {}, ready, http, grpc, ("json",))


def grpc_python() -> Path | None:
    """A Python with grpcio for the gRPC answer check: ours, else a peer's virtualenv."""
    if importlib.util.find_spec("grpc") is not None:
        return Path(c.PYTHON)
    return next((p.python for p in peers.PEERS if (p.venv / ".complete").exists()), None)


def check_answers(
    server: Server, bodies: peer_load.Bodies, expected: dict[int, np.ndarray]
) -> dict[str, str]:
    """Send each body once; kind -> why it failed (missing: its answer had the right logits)."""
    failures: dict[str, str] = {}
    for kind in ("binary", "json"):
        for images in (1, 64):
            body, head = bodies.http[kind, images]
            status, answer, length = v2_wire.post(server.http_port, INFER, body, head)
            try:
                if status != 200:
                    raise ValueError(f"HTTP {status}: {answer[:200]!r}")
                _compare(server, v2_wire.logits_from_http(answer, length), expected[images])
            except (ValueError, KeyError, TypeError) as exc:
                failures.setdefault(kind, f"x{images}: {exc}")
    python = grpc_python()
    try:
        if python is None:
            raise RuntimeError("no Python with grpcio to check the answer")
        _compare(server, v2_wire.grpc_call(python, server.grpc_port, bodies.grpc), expected[1])
    except (RuntimeError, ValueError, KeyError) as exc:
        failures["grpc"] = str(exc)
    if "binary" in failures:
        failures["h1"] = failures["h1-pipelined"] = failures["binary"]
    if "grpc" in failures:
        failures["grpc-stream"] = failures["grpc"]
    return failures


def _compare(server: Server, logits: np.ndarray, expected: np.ndarray) -> None:
    if logits.shape != expected.shape:
        raise ValueError(f"logits of shape {list(logits.shape)}, expected {list(expected.shape)}")
    # relu-serve's v2 model may normalise raw pixels first: there only the shape must match.
    if server.key != "relu-serve" and not np.allclose(logits, expected, rtol=1e-4, atol=1e-5):
        raise ValueError("logits differ from the in-process session's")


def start_servers(
    stack: ExitStack,
    servers: dict[str, Server],
    rows: list[Row],
    work: Path,
    bodies: peer_load.Bodies,
    args: argparse.Namespace,
) -> None:
    """Start every server (each stops with ``stack``) and check its answers; the rows of a
    server that does not start, or of a body it answers wrongly, get their failure."""
    for key, server in servers.items():
        mine = [row for row in rows if row.server == key]
        print(f"starting {key} {server.version} ...", flush=True)
        try:
            stack.enter_context(
                c.serve(
                    key,
                    server.argv,
                    env=server.env,
                    port=server.http_port,
                    ready_path=server.ready_path,
                    log_dir=work,
                    ready_timeout_s=args.ready_timeout,
                )
            )
        except (RuntimeError, OSError) as exc:
            print(f"  {key} failed: {exc}", file=sys.stderr, flush=True)
            for row in mine:
                row.failure = row.failure or f"{key} did not start"
            continue
        failures = check_answers(server, bodies, args.expected)
        for kind, why in failures.items():
            print(f"  {key} {kind}: {why}", flush=True)
        for row in mine:
            row.failure = failures.get(row.scenario.kind)


def schedule(rows: list[Row]) -> list[Row]:
    """The rows of one round: each request kind on every server back to back, in the order
    the kinds first appear."""
    order = {label: i for i, label in enumerate(dict.fromkeys(r.scenario.label for r in rows))}
    servers = {key: i for i, key in enumerate(dict.fromkeys(r.server for r in rows))}
    return sorted(rows, key=lambda r: (order[r.scenario.label], servers[r.server]))


def run_rounds(
    servers: dict[str, Server],
    rows: list[Row],
    bodies: peer_load.Bodies,
    args: argparse.Namespace,
    reference: Callable[[], float],
) -> list[float]:
    """``args.rounds`` rounds of every row still without a failure (each row gets its median
    round); the ``reference`` figure (in-process images/s) timed after each round."""
    results: dict[int, list[Result]] = {id(row): [] for row in rows}
    images_per_s = []
    for round_ in range(1, args.rounds + 1):
        for row in schedule(rows):
            if row.failure is None:
                label = f"round {round_}/{args.rounds}"
                result = _drive(servers[row.server], row, bodies, args.duration, label)
                if result is not None:
                    results[id(row)].append(result)
        images_per_s.append(reference())
    for row in rows:
        if row.failure is None and results[id(row)]:
            row.result = median_result(results[id(row)])
    return images_per_s


def median_result(results: list[Result]) -> Result:
    """The round with the median req/s (the lower middle one of an even count)."""
    return sorted(results, key=lambda r: r.ok_per_s)[(len(results) - 1) // 2]


def _drive(
    server: Server, row: Row, bodies: peer_load.Bodies, duration_s: float, label: str
) -> Result | None:
    """One round of ``row``; None (and the row's failure) when the load tool failed."""
    s = row.scenario
    try:
        if s.kind in ("binary", "json"):
            result = peer_load.wrk(
                server.http_port, INFER, bodies, s.kind, s.images, s.connections, duration_s
            )
        else:
            port = server.grpc_port if s.kind.startswith("grpc") else server.http_port
            failed_before = failed_inferences(server)
            result = peer_load.h2load(port, INFER, bodies, s.kind, s.connections, duration_s)
            result = _with_server_failures(result, failed_before, failed_inferences(server))
    except RuntimeError as exc:
        row.failure = str(exc)
        return None
    print(
        f"  {label} {server.key:10} {s.label:22} {result.ok_per_s:9.1f} req/s  "
        f"p50 {peer_load.ms(result.p50_ms)}  p99 {peer_load.ms(result.p99_ms)}  "
        f"errors {result.errors}",
        flush=True,
    )
    return result


def failed_inferences(server: Server) -> int | None:
    """The model's failed inferences so far, from the v2 statistics extension where the server
    has it (relu-serve): gRPC errors travel in the trailers of HTTP 200 answers, which h2load
    counts as successes, so the server's own count is what tells."""
    try:
        status, body = c.http_get(server.http_port, f"/v2/models/{NAME}/stats")
        if status != 200:
            return None
        stats = json.loads(body)["model_stats"]
        return sum(int(m["inference_stats"]["fail"]["count"]) for m in stats)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _with_server_failures(result: Result, before: int | None, after: int | None) -> Result:
    """``result`` with the failures the server counted during it (h2load's successes less)."""
    if before is None or after is None or after <= before:
        return result
    failed = after - before  # warm-up included: if anything, too many are taken off
    ok_per_s = max(0.0, result.ok_per_s - failed / result.duration_s)
    return dataclasses.replace(result, ok_per_s=ok_per_s, errors=result.errors + failed)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.v2_vs_peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=MODEL, help="ONNX file (default %(default)s)")
    parser.add_argument("--duration", type=float, help="seconds per row (default 8; 3 --quick)")
    parser.add_argument("--quick", action="store_true", help="the target rows only, 3 s each")
    parser.add_argument("--rounds", type=int, help="rounds of every row (default 3; 1 --quick)")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="comma-separated (default %(default)s)"
    )
    parser.add_argument("--ready-timeout", type=float, default=180.0, help="seconds per server")
    args = parser.parse_args(argv)
    args.duration = args.duration or (3 if args.quick else 8)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {', '.join(SERVERS)}")
    return args


def missing_tools() -> list[str]:
    problems = c.missing_tools()
    if shutil.which("h2load") is None:
        problems.append(
            "h2load is not installed; install it with: apt-get install -y nghttp2-client"
        )
    return problems


def make_server(key: str, model: Path, work: Path) -> Server | None:
    try:
        return relu_serve(model, work) if key == "relu-serve" else peer(key, model, work)
    except (RuntimeError, OSError, TimeoutError) as exc:
        print(f"bench: {key} is left out: {exc}", file=sys.stderr, flush=True)
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problems = missing_tools()
    if problems:
        print("bench: " + "\n       ".join(problems), file=sys.stderr)
        return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="relu-serve-bench-v2-") as tmp:
        work = Path(tmp)
        model = args.model if args.model.exists() else peer_load.export_model(work)
        name, output, x1, x64 = inputs(model)
        reference = in_process(model, {1: x1, 64: x64})
        args.expected = {size: logits for size, (_, logits) in reference.items()}
        images_per_s = [reference[64][0]]
        bodies = peer_load.write_bodies(work, NAME, name, output, {1: x1, 64: x64})
        rows: list[Row] = []
        servers: dict[str, Server] = {}
        for key in args.servers:
            mine = [Row(key, s) for s in scenarios(key, args.quick)]
            rows += mine
            server = make_server(key, model, work)
            if server is None:
                for row in mine:
                    row.failure = f"{key} could not be installed"
                continue
            servers[key] = server
        with ExitStack() as stack:
            start_servers(stack, servers, rows, work, bodies, args)
            images_per_s += run_rounds(
                servers, rows, bodies, args, lambda: in_process(model, {64: x64})[64][0]
            )
        versions = {key: server.version for key, server in servers.items()}
    elapsed = time.monotonic() - started
    peer_load.report(rows, versions, max(images_per_s), args, model, elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
