"""Bench /activate: in-process, HTTP .npy, HTTP JSON and the tutorial baseline; one run, one table.

Run: .venv/bin/python -m bench.activate      (about a minute; starts and stops its own servers)

For 1e3, 1e5 and 1e6 float32 elements and relu, gelu (exact) and sigmoid, value + grad:
- in-process: service.activations.evaluate on a numpy array;
- copies: two memcpy of the payload (request bytes in, response bytes out), the floor of any wire;
- .npy / JSON: a round trip to relu-serve (client sends prepared bytes, reads the whole answer);
- baseline: bench/baseline_activate.py, FastAPI with {"x": list[float]} through pydantic and a
  pydantic response model, measured the same way.
- raw bytes: POST /echo of bench/ceiling_asgi.py, a bare ASGI app that reads the .npy body and
  answers it twice (as many bytes as value + grad): the transport floor.
Every figure is the best of several runs. All servers run under uvicorn on 127.0.0.1 (pinned to
core 0) with the same glibc malloc settings (MALLOC_ENV), which the bench process uses too.

--vs-torch (no servers, ~30 s): every smooth function, 1e6 float32 (--dtype float64 to see
float64), value + grad in-process against torch 2.13 on one thread (forward, then autograd
backward of ones), timed alternately, best of --repeats each; the float32 target is ours <= 1.5x
torch.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

from bench._common import MALLOC_ENV, PYTHON, ROOT, free_port, serve
from service.activations import evaluate, get_activation
from service.codecs.npy import dump_npy

SIZES = (1_000, 100_000, 1_000_000)
FUNCTIONS = ("relu", "gelu", "sigmoid")
NPY, NPZ, JSON = "application/x-npy", "application/x-npz", "application/json"


class Client:
    """One keep-alive HTTP/1.1 connection; post() returns (status, body)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, body, {"Content-Type": content_type})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.conn.close()  # the server closed an idle keep-alive connection: reconnect
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def timed(call: Callable[[], object], repeats: int) -> float:
    """Best of ``repeats`` calls after one warm-up call, in seconds: on a machine shared with
    other work the minimum is the steadiest estimate of what the code itself costs."""
    call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return min(samples)


def repeats_for(n: int, slow: bool = False) -> int:
    return {1_000: 30, 100_000: 10}.get(n, 5) // (3 if slow else 1) or 1


def model_path(tmp: Path) -> Path:
    """The exported model relu-serve loads at start-up (a --dry-run export is enough here)."""
    existing = ROOT / "models" / "relu_cnn.onnx"
    if existing.exists():
        return existing
    out = tmp / "relu_cnn.onnx"
    subprocess.run(
        [PYTHON, "-m", "model_export", "--dry-run", "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def measure(ours: Client, base: Client, raw: Client, function: str, n: int) -> dict[str, float]:
    x = (np.random.default_rng(n).standard_normal(n) * 3).astype(np.float32)
    activation = get_activation(function)
    params = activation.validate({})
    npy_body = dump_npy(x)
    json_body = orjson.dumps({"function": function, "x": x}, option=orjson.OPT_SERIALIZE_NUMPY)
    base_body = orjson.dumps({"x": x}, option=orjson.OPT_SERIALIZE_NUMPY)
    npy_path = f"/activate?function={function}&outputs=value,grad"

    status, answer = ours.post(npy_path, npy_body, NPY)
    assert status == 200, answer[:300]
    with np.load(io.BytesIO(answer)) as out:
        want = evaluate(activation, x, params, ["value", "grad"]).arrays
        np.testing.assert_array_equal(out["value"], want["value"])
    status, base_answer = base.post(f"/activate/{function}", base_body, JSON)
    assert status == 200, base_answer[:300]

    src_in, src_out = np.frombuffer(npy_body, np.uint8), np.frombuffer(answer, np.uint8)
    dst_in, dst_out = np.empty_like(src_in), np.empty_like(src_out)
    reps = repeats_for(n)
    return {
        "in-process": timed(lambda: evaluate(activation, x, params, ["value", "grad"]), reps),
        "copies": timed(lambda: (np.copyto(dst_in, src_in), np.copyto(dst_out, src_out)), reps),
        "raw bytes": timed(lambda: raw.post("/echo", npy_body, NPY), reps),
        ".npy": timed(lambda: ours.post(npy_path, npy_body, NPY), reps),
        "JSON": timed(lambda: ours.post("/activate", json_body, JSON), reps),
        "baseline": timed(
            lambda: base.post(f"/activate/{function}", base_body, JSON), repeats_for(n, slow=True)
        ),
    }


def report(rows: list[tuple[str, int, dict[str, float]]]) -> int:
    columns = ("in-process", "copies", "raw bytes", ".npy", "JSON", "baseline")
    print(f"{'function':<9}{'elements':>10}" + "".join(f"{c + ' ms':>15}" for c in columns)
          + f"{'base/.npy':>11}{'base/JSON':>11}")  # fmt: skip
    for function, n, t in rows:
        cells = "".join(f"{t[c] * 1e3:>15.3f}" for c in columns)
        print(f"{function:<9}{n:>10}{cells}{t['baseline'] / t['.npy']:>10.1f}x"
              f"{t['baseline'] / t['JSON']:>10.1f}x")  # fmt: skip
    print("\nTargets at 1e6 elements (value + grad):")
    failures = 0
    for function, n, t in rows:
        if n != 1_000_000:
            continue
        floor = t["in-process"] + t["copies"]
        checks = [
            (f".npy round trip {t['.npy'] * 1e3:.1f} ms <= 3 x (in-process + copies) = "
             f"{3 * floor * 1e3:.1f} ms", t[".npy"] <= 3 * floor),
            (f".npy {t['baseline'] / t['.npy']:.0f}x faster than the baseline (>= 50x)",
             t["baseline"] >= 50 * t[".npy"]),
            (f"JSON {t['baseline'] / t['JSON']:.1f}x faster than the baseline (>= 2.5x)",
             t["baseline"] >= 2.5 * t["JSON"]),
        ]  # fmt: skip
        for text, ok in checks:
            failures += not ok
            print(f"  {'PASS' if ok else 'FAIL'}  {function}: {text}")
        print(f"  info  {function}: .npy {t['.npy'] * 1e3:.1f} ms = raw-bytes floor "
              f"{t['raw bytes'] * 1e3:.1f} ms + {(t['.npy'] - t['raw bytes']) * 1e3:.1f} ms")  # fmt: skip
    return failures


#: The smooth functions and their parameters (as torch takes them) for --vs-torch.
VS_TORCH = (
    ("elu", {}), ("selu", {}), ("celu", {}), ("gelu", {}), ("gelu", {"approximate": "tanh"}),
    ("silu", {}), ("mish", {}), ("sigmoid", {}), ("tanh", {}), ("softplus", {}),
    ("softsign", {}), ("logsigmoid", {}), ("tanhshrink", {}), ("softmax", {"dim": -1}),
    ("log_softmax", {"dim": -1}), ("glu", {"dim": -1}),
)  # fmt: skip


def vs_torch(n: int, repeats: int, dtype: str = "float32") -> int:
    """In-process value + grad against torch side by side; returns the number of misses (the
    1.5x target is for float32; float64 is reported only)."""
    import torch

    from tests.unit.activations_torch import TORCH

    torch.set_num_threads(1)
    x = (np.random.default_rng(n).standard_normal(n) * 3).astype(dtype)
    print(f"{dtype} {n:.0e} elements, value + grad (vjp along a dim of 1000)")
    target = "target <= 1.5x" if dtype == "float32" else "no target (float64)"
    print(f"{'function':<18}{'torch ms':>10}{'ours ms':>10}{'ours/torch':>12}  {target}")
    misses = 0
    for name, raw in VS_TORCH:
        activation = get_activation(name)
        params = activation.validate(raw)
        rows = x.reshape(-1, 1000) if not activation.elementwise else x
        outputs = ["value", "grad"] if activation.elementwise else ["value", "vjp"]
        g = np.ones(activation.shape_out(rows.shape, params), dtype)
        xt = torch.tensor(rows, requires_grad=True)

        def theirs(f=TORCH[name], xt=xt, p=params) -> object:
            y = f(xt, p)
            return torch.autograd.grad(y, xt, torch.ones_like(y))

        def ours(a=activation, rows=rows, p=params, o=outputs, g=g) -> object:
            return evaluate(a, rows, p, o, g if "vjp" in o else None)

        t_torch, t_ours = alternating(theirs, ours, repeats)
        ok = t_ours <= 1.5 * t_torch or dtype != "float32"
        misses += not ok
        label = name + ("(tanh)" if raw.get("approximate") == "tanh" else "")
        print(f"{label:<18}{t_torch * 1e3:>10.2f}{t_ours * 1e3:>10.2f}{t_ours / t_torch:>11.2f}x"
              f"  {'-' if dtype != 'float32' else 'PASS' if ok else 'FAIL'}")  # fmt: skip
    return misses


def alternating(
    a: Callable[[], object], b: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Best time of each, measured in turns so that both see the same machine load."""
    a(), b()
    best_a = best_b = float("inf")
    for _ in range(repeats):
        best_a = min(best_a, timed(a, 1))
        best_b = min(best_b, timed(b, 1))
    return best_a, best_b


def main() -> int:
    if any(os.environ.get(key) != value for key, value in MALLOC_ENV.items()):
        # The in-process figures get the servers' malloc settings too: re-run under them.
        os.execve(sys.executable, [sys.executable, "-m", "bench.activate", *sys.argv[1:]],
                  {**os.environ, **MALLOC_ENV})  # fmt: skip
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--vs-torch", action="store_true", help="in-process against torch only")
    parser.add_argument("--repeats", type=int, default=15, help="--vs-torch: runs per function")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    if args.vs_torch:
        from service.activations import fused

        print(f"compiled float32 kernels: {', '.join(fused.warm_up()) or 'none (no numba)'}")
        return 1 if vs_torch(1_000_000, args.repeats, args.dtype) else 0
    with tempfile.TemporaryDirectory(prefix="bench-activate-") as tmp_name:
        tmp = Path(tmp_name)
        port, base_port, raw_port = free_port(), free_port(), free_port()
        ours_env = {
            "RELU_SERVE_MODEL_PATH": str(model_path(tmp)),
            "RELU_SERVE_PORT": str(port),
            "RELU_SERVE_LOG_LEVEL": "warning",
            # 1e6 values as JSON (~19 MB) are over the default max_json_bytes (4 MiB).
            "RELU_SERVE_MAX_JSON_BYTES": str(64 * 1024 * 1024),
        }
        base_argv = [PYTHON, "-m", "uvicorn", "bench.baseline_activate:app", "--host",
                     "127.0.0.1", "--port", str(base_port), "--log-level", "warning"]  # fmt: skip
        # The ceiling app's POST /echo: the one bare-ASGI transport floor both benches use.
        raw_argv = [PYTHON, "-m", "uvicorn", "--factory", "bench.ceiling_asgi:create_app",
                    "--host", "127.0.0.1", "--port", str(raw_port), "--log-level", "warning",
                    "--lifespan", "off"]  # fmt: skip
        with (
            serve("relu-serve", [PYTHON, "-m", "service"], env=ours_env, port=port,
                  ready_path="/readyz", log_dir=tmp, ready_timeout_s=120) as ours,
            serve("baseline", base_argv, env={}, port=base_port, ready_path="/docs",
                  log_dir=tmp, ready_timeout_s=60) as base,
            serve("raw", raw_argv, env={"BENCH_MODEL": ours_env["RELU_SERVE_MODEL_PATH"]}, port=raw_port, ready_path="/", log_dir=tmp,
                  ready_timeout_s=60) as raw,
        ):  # fmt: skip
            print(f"relu-serve :{ours.port} and baseline :{base.port}, malloc env {MALLOC_ENV}\n")
            clients = Client(ours.port), Client(base.port), Client(raw.port)
            rows = [
                (function, n, measure(*clients, function, n))
                for n in args.sizes
                for function in FUNCTIONS
            ]
    return 1 if report(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
