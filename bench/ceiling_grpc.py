"""What grpcio can do at all on one core: its bare unary servers against a bare ASGI app, and
relu-serve's v2 infer over HTTP/1.1 and gRPC, in interleaved rounds on one load generator.

Every server runs on core 0 at once (only the one under load works), h2load on core 1 (c16,
one stream per connection, the v2 bench's 1-image bodies). Rounds alternate the targets, so
that a noisy neighbour slows them alike; each target gets the median of its rounds, and its
server's CPU per request (every thread's on-CPU time, /proc/PID/task/*/schedstat) and
context switches per request, which depend far less on the neighbours than req/s does.

Targets: ``grpc aio echo`` (grpc.aio, uvloop, a generic handler on raw bytes that answers a
fixed ModelInferResponse: no protobuf, no model), ``grpc sync echo`` (grpc.server on a
16-thread pool, the same), ``asgi echo h1`` (a bare ASGI app under uvicorn with httptools and
uvloop, as relu-serve runs, answering a fixed body), ``relu-serve h1`` and ``relu-serve grpc``
(the full v2 infer), and ``relu-serve stream16`` (the same requests on ModelStreamInfer, 16 in
flight on each of the 16 streams, each request counted). If grpcio's bare echo costs more CPU per request than relu-serve's whole
HTTP request, gRPC cannot reach HTTP's req/s on one core in this process model.

    python -m bench.ceiling_grpc [--rounds 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import _common as c
from bench import peer_load, v2_vs_peers, v2_wire
from bench.v2_vs_peers import INFER, MODEL, NAME, inputs

SERVICE = "inference.GRPCInferenceService"


# ---- the bare servers (run as `python -m bench.ceiling_grpc --serve KIND PORT`)


def fixed_answer() -> bytes:
    """A serialised ModelInferResponse with 10 logits, as relu-serve answers one image."""
    from service.grpc.proto import relu_serve_v2_pb2 as pb

    answer = pb.ModelInferResponse(model_name=NAME, model_version="1")
    answer.outputs.add(name="logits", datatype="FP32", shape=[1, 10])
    answer.raw_output_contents.append(bytes(40))
    return answer.SerializeToString()


def serve_grpc(kind: str, port: int) -> None:
    import grpc

    answer = fixed_answer()
    options = [("grpc.so_reuseport", 0)]
    address = f"127.0.0.1:{port}"
    if kind == "grpc-sync":

        def echo(request: bytes, context: Any) -> bytes:
            return answer

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=options)
        handler = grpc.unary_unary_rpc_method_handler(echo)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"ModelInfer": handler}),)
        )
        server.add_insecure_port(address)
        server.start()
        server.wait_for_termination()
        return

    async def echo_aio(request: bytes, context: Any) -> bytes:
        return answer

    async def main() -> None:
        server = grpc.aio.server(options=options)
        handler = grpc.unary_unary_rpc_method_handler(echo_aio)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"ModelInfer": handler}),)
        )
        server.add_insecure_port(address)
        await server.start()
        await server.wait_for_termination()

    import uvloop

    uvloop.run(main())


def serve_asgi(port: int) -> None:
    import uvicorn

    answer = b'{"model_name":"relu_cnn","outputs":[]}' + bytes(40)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        headers = [(b"content-type", b"application/octet-stream")]
        headers.append((b"content-length", b"%d" % len(answer)))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


# ---- the driver


@dataclass
class Target:
    name: str
    kind: str  # "grpc" or "h1": the request h2load sends
    port: int
    pid: int
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    switches: list[float] = field(default_factory=list)


def thread_totals(pid: int) -> tuple[int, int]:
    """On-CPU ns and context switches of every thread of ``pid``, summed."""
    ns = switches = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            ns += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                if "ctxt_switches" in line:
                    switches += int(line.split()[1])
        except OSError:  # a thread that ended meanwhile
            continue
    return ns, switches


def load(target: Target, bodies: peer_load.Bodies, seconds: float) -> None:
    """h2load at c16 on one target; a stream carries PIPELINE requests (counted each)."""
    per = peer_load.PIPELINE if target.kind == "grpc-stream" else 1
    if target.kind == "grpc-stream":
        url = f"http://127.0.0.1:{target.port}{peer_load.STREAM_METHOD}"
        extra = ["-d", str(bodies.directory / "v2_grpc_stream.body")]
        extra += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    elif target.kind == "grpc":
        url = f"http://127.0.0.1:{target.port}{v2_wire.GRPC_PATH}"
        extra = ["-d", str(bodies.directory / "v2_grpc_1.body")]
        extra += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    else:
        url = f"http://127.0.0.1:{target.port}{INFER}"
        _, head = bodies.http["binary", 1]
        extra = ["--h1", "-d", str(bodies.directory / "v2_binary_1.body")]
        extra += ["-H", f"inference-header-content-length: {head}"]
    argv = ["h2load", "-t1", "-c16", "-m1", "-D", str(max(1, round(seconds))), *extra, url]
    before = thread_totals(target.pid)
    done = subprocess.run(
        c.pinned(c.LOAD_CPU, argv), capture_output=True, text=True, timeout=seconds + 60
    )
    ns, switches = (b - a for a, b in zip(before, thread_totals(target.pid), strict=True))
    result = peer_load.parse_h2load(done.stdout, done.stderr)
    count = max(1, round(result.ok_per_s * per * result.duration_s))
    target.rps.append(result.ok_per_s * per)
    target.cpu_us.append(ns / 1000 / count)
    target.switches.append(switches / count)


@contextmanager
def bare(kind: str, work: Path) -> Iterator[tuple[int, int]]:
    """A bare server on the server core: (port, pid), once it accepts connections."""
    port = c.free_port()
    argv = [c.PYTHON, "-m", "bench.ceiling_grpc", "--serve", kind, str(port)]
    with (work / f"{kind}.log").open("wb") as out:
        process = subprocess.Popen(
            c.pinned(c.SERVER_CPU, argv), cwd=c.ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (work / f"{kind}.log").read_text()
                    raise RuntimeError(f"{kind} did not start: {log}") from None
                time.sleep(0.1)
        yield port, process.pid
    finally:
        c.stop(process)


def targets(stack: ExitStack, work: Path) -> list[Target]:
    http, grpc = c.free_port(), c.free_port()
    env = c.relu_env(http, grpc_port=str(grpc), model_path=str(MODEL))
    relu = stack.enter_context(
        c.serve(
            "relu-serve",
            [c.PYTHON, "-m", "service"],
            env=env,
            port=http,
            ready_path="/readyz",
            log_dir=work,
        )
    )
    found = [
        Target("relu-serve h1", "h1", http, relu.process.pid),
        Target("relu-serve grpc", "grpc", grpc, relu.process.pid),
        Target(f"relu-serve stream{peer_load.PIPELINE}", "grpc-stream", grpc, relu.process.pid),
    ]
    for kind, name, load_kind in (
        ("grpc-aio", "grpc aio echo", "grpc"),
        ("grpc-sync", "grpc sync echo", "grpc"),
        ("asgi", "asgi echo h1", "h1"),
    ):
        port, pid = stack.enter_context(bare(kind, work))
        found.append(Target(name, load_kind, port, pid))
    return found


def report(found: list[Target], rounds: int, seconds: float) -> None:
    print(
        f"\ngRPC ceiling: {rounds} interleaved rounds of {seconds:g} s per target, h2load c16 "
        f"on core {c.LOAD_CPU}, every server on core {c.SERVER_CPU}; medians"
    )
    print(f"{'target':20} {'req/s':>8} {'x relu h1':>9} {'CPU us/req':>10} {'switches/req':>12}")
    base = statistics.median(found[0].rps)
    for t in found:
        rps = statistics.median(t.rps)
        print(
            f"{t.name:20} {rps:8.0f} {rps / base:9.2f} {statistics.median(t.cpu_us):10.1f} "
            f"{statistics.median(t.switches):12.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.ceiling_grpc", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        kind, port = args.serve[0], int(args.serve[1])
        serve_asgi(port) if kind == "asgi" else serve_grpc(kind, port)
        return 0
    problems = v2_vs_peers.missing_tools()
    if problems:
        print("bench: " + "\n       ".join(problems), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="relu-serve-bench-grpc-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        name, output, x1, x64 = inputs(MODEL)
        bodies = peer_load.write_bodies(work, NAME, name, output, {1: x1, 64: x64})
        found = targets(stack, work)
        for round_ in range(args.rounds):
            for target in found:
                load(target, bodies, args.seconds)
            print(f"round {round_ + 1}: " + ", ".join(
                f"{t.name} {t.rps[-1]:.0f} req/s {t.cpu_us[-1]:.0f} us" for t in found
            ), flush=True)  # fmt: skip
        report(found, args.rounds, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
