"""Old vs new relu-serve side by side: v2 HTTP binary infer, wrk rounds interleaved.

    python -m bench.v2_ab --old /work/main [--rounds 5] [--duration 4] [--connections 1 16]

Starts relu-serve from ``--old`` (another checkout) and from this one, both on the server core
with the bench settings (one worker, one ONNX Runtime thread), and alternates wrk rounds between
them on the load core, so that a machine shared with other work loads both alike. Prints each
round and, per row, the median of new/old req/s and p50 ratios.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from bench import _common as c
from bench import v2_wire


def _start(
    root: Path, model: Path, work: Path, name: str, settings: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int]:
    port = c.free_port()
    env = {**os.environ, **c.MALLOC_ENV, **c.relu_env(port, model_path=str(model), **settings)}
    with (work / f"{name}.log").open("wb") as out:
        process = subprocess.Popen(
            c.pinned(c.SERVER_CPU, [c.PYTHON, "-m", "service"]),
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, port


def _wait(process: subprocess.Popen[bytes], port: int) -> None:
    server = c.Server("relu-serve", port, process, Path(os.devnull))
    c._wait_ready(server, "/readyz", 300.0)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the checkout to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--images", type=int, nargs="+", default=[1, 64])
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="NAME=VALUE", help="settings of both servers"
    )
    args = parser.parse_args()
    # Stopped with SIGTERM (timeout, kill), the servers are still stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="bench-v2ab-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        model = work / "digits.onnx"
        export = [c.PYTHON, "-m", "model_export", "--dry-run", "--out", str(model)]
        subprocess.run(export, cwd=c.ROOT, check=True, capture_output=True)
        for images in args.images:
            batch = np.random.default_rng(images).uniform(0, 16, (images, 1, 8, 8))
            payload, length = v2_wire.binary_body("input", batch.astype(np.float32), "logits")
            (work / f"v2_{images}.bin").write_bytes(payload)
            (work / f"v2_{images}.bin.len").write_text(str(length))
        servers = {}
        for name, root in (("old", args.old.resolve()), ("new", c.ROOT)):
            settings = dict(item.split("=", 1) for item in args.set)
            process, port = _start(root, model, work, name, settings)
            stack.callback(c.stop, process)
            servers[name] = (process, port)
        for process, port in servers.values():
            _wait(process, port)
        rows = [(conns, images) for images in args.images for conns in args.connections]
        got: dict[tuple[int, int, str], list[tuple[float, float, float]]] = {}
        for round_ in range(args.rounds):
            for conns, images in rows:
                order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
                for name in order:
                    url = f"http://127.0.0.1:{servers[name][1]}"
                    cpu = _cpu_s(servers[name][0].pid)
                    result, _ = c.run_wrk(
                        "v2_infer.lua",
                        url,
                        connections=conns,
                        duration_s=args.duration,
                        body_dir=work,
                        body=f"v2_{images}.bin",
                    )
                    cpu = _cpu_s(servers[name][0].pid) - cpu
                    cpu_us = cpu / max(result.requests, 1) * 1e6
                    if result.errors:
                        raise SystemExit(f"{name} c{conns} {images} images: {result.errors} errors")
                    got.setdefault((conns, images, name), []).append(
                        (result.ok_per_s, result.p50_ms, cpu_us)
                    )
                    print(
                        f"round {round_ + 1} {name} c{conns:<3} {images:3} images: "
                        f"{result.ok_per_s:8,.0f} req/s  p50 {result.p50_ms:7.3f} ms"
                        f"  server CPU {cpu_us:6.1f} us/request",
                        flush=True,
                    )
        print(f"\nnew/old, median of {args.rounds} interleaved rounds")
        for conns, images in rows:
            old, new = got[(conns, images, "old")], got[(conns, images, "new")]
            rate = [n[0] / o[0] for n, o in zip(new, old, strict=True)]
            p50 = [n[1] / o[1] for n, o in zip(new, old, strict=True)]
            cpu = [n[2] / o[2] for n, o in zip(new, old, strict=True)]
            print(
                f"c{conns:<3} {images:3} images: old {statistics.median(r[0] for r in old):8,.0f}"
                f" new {statistics.median(r[0] for r in new):8,.0f} req/s"
                f"  req/s x{statistics.median(rate):.3f}  p50 x{statistics.median(p50):.3f}"
                f"  CPU/request x{statistics.median(cpu):.3f}"
                f" (old {statistics.median(r[1] for r in old):.3f} ms,"
                f" new {statistics.median(r[1] for r in new):.3f} ms)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
