"""What counting costs on the wire: relu-serve with RELU_SERVE_METRICS=true vs false, side by side.

`python -m bench.metrics_cost [--rounds 3] [--duration 8]` starts `python -m service` (1 worker,
the model at --model) on the server core with metrics on, then off, in alternating rounds,
and runs wrk on the load core against each: one-image JSON /predict at 1 and 64 connections.
It prints the median ok/s and p50 of each and the on/off ratios (rounds alternate, so a machine
that slows down meanwhile slows both).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench import _common as c
from bench.serving import write_bodies

CONNECTIONS = (1, 64)


def measure(model: Path, metrics: bool, work: Path, duration_s: float) -> dict[int, c.WrkResult]:
    port = c.free_port()
    env = {
        "RELU_SERVE_MODEL_PATH": str(model),
        "RELU_SERVE_PORT": str(port),
        "RELU_SERVE_METRICS": str(metrics).lower(),
        "RELU_SERVE_LOG_LEVEL": "warning",
    }
    name = f"metrics-{'on' if metrics else 'off'}"
    argv = [c.PYTHON, "-m", "service"]
    results = {}
    with c.serve(
        name, argv, env=env, port=port, ready_path="/readyz", log_dir=work, ready_timeout_s=600
    ):
        url = f"http://127.0.0.1:{port}"
        c.run_wrk("predict_json.lua", url, connections=8, duration_s=2, body_dir=work)  # warm-up
        for connections in CONNECTIONS:
            result, _ = c.run_wrk(
                "predict_json.lua",
                url,
                connections=connections,
                duration_s=duration_s,
                body_dir=work,
            )
            results[connections] = result
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.metrics_cost", description=__doc__)
    parser.add_argument("--model", type=Path, default=c.ROOT / "models" / "relu_cnn.onnx")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk row")
    args = parser.parse_args(argv)
    problems = c.missing_tools()
    if problems:
        raise SystemExit("\n".join(problems))
    runs: dict[bool, list[dict[int, c.WrkResult]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="relu-serve-metrics-cost-") as tmp:
        work = Path(tmp)
        write_bodies(work)
        for round_ in range(args.rounds):
            for metrics in (True, False) if round_ % 2 == 0 else (False, True):
                runs[metrics].append(measure(args.model, metrics, work, args.duration))
    print(f"POST /predict, one-image JSON, 1 worker, {args.rounds} alternating rounds (medians):")
    for connections in CONNECTIONS:
        ok = {m: statistics.median(r[connections].ok_per_s for r in runs[m]) for m in runs}
        p50 = {m: statistics.median(r[connections].p50_ms for r in runs[m]) for m in runs}
        errors = sum(r[connections].errors for m in runs for r in runs[m])
        print(
            f"  c{connections:<3} metrics on {ok[True]:8,.0f} ok/s p50 {p50[True]:6.2f} ms | "
            f"off {ok[False]:8,.0f} ok/s p50 {p50[False]:6.2f} ms | "
            f"on/off req/s {ok[True] / ok[False]:.3f}x, p50 {p50[True] / p50[False]:.3f}x"
            + (f" ({errors} errors)" if errors else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
