"""The ReLU monitor's cost: the same server build with the monitor off, on at sampling 1 and on
at the default sampling, driven by wrk side by side (rounds in alternating order), /predict JSON
of one image at 1 and 64 connections. `make bench` runs it; alone: `python -m bench.monitor`.

Each ratio is taken within a round (a variant against the off server of the same round, minutes
apart at most) and the targets are judged on the median of those paired ratios; the table also
shows their spread (lowest..highest round), which says how far the machine's other load moved
them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench import _common as c
from bench import instructions
from service.api.schemas.predict import ZERO
from service.config import Settings

_DEFAULT_EVERY = Settings.model_fields["monitor_sample_every"].default
#: Server variants: name -> the monitor settings it runs with; the default sampling, and 1 in 8
#: and 1 in 16 beside it, so that the choice of the default is measured.
VARIANTS = {
    "off": {"RELU_SERVE_MONITOR": "false"},
    **{
        ("default" if every == _DEFAULT_EVERY else f"sample {every}"): {
            "RELU_SERVE_MONITOR": "true",
            "RELU_SERVE_MONITOR_SAMPLE_EVERY": str(every),
        }
        for every in sorted({1, 8, 16, _DEFAULT_EVERY})
    },
}
CONNECTIONS = (1, 64)
#: Targets of issue 12: (variant, p50 c1 at most x off, req/s c64 at least x off).
TARGETS = {"sample 1": (1.10, 0.90), "default": (1.05, 0.97)}


@dataclass
class Figures:
    """Per variant and connection count, the p50 (ms) and req/s of every round."""

    p50_ms: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    rps: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    #: Server CPU time (user + system, all its threads) per successful request, in us.
    cpu_us: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    monitored: dict[str, str] = field(default_factory=dict)

    def add(self, variant: str, conns: int, result: c.WrkResult, cpu_s: float) -> None:
        key = (variant, conns)
        self.p50_ms.setdefault(key, []).append(result.p50_ms)
        self.rps.setdefault(key, []).append(result.ok_per_s)
        done = max(1, result.requests - result.status_errors)
        self.cpu_us.setdefault(key, []).append(cpu_s / done * 1e6)

    def median(self, table: dict[tuple[str, int], list[float]], variant: str, conns: int) -> float:
        return statistics.median(table[(variant, conns)])

    def ratios(
        self, table: dict[tuple[str, int], list[float]], variant: str, conns: int
    ) -> list[float]:
        """Per round, the variant's figure over the off server's of the same round."""
        pairs = zip(table[(variant, conns)], table[("off", conns)], strict=True)
        return [value / off for value, off in pairs]


def measure(model: Path, work: Path, *, duration_s: float, rounds: int) -> Figures:
    """Each round starts every variant in turn (the order reversed every other round, so that
    a drift of the machine's load hits them alike) and drives it at each connection count."""
    (work / "predict_1.json").write_bytes(orjson.dumps({"inputs": [ZERO]}))
    figures = Figures()
    port = c.free_port()
    env = c.relu_env(port, model_path=str(model))
    url = f"http://127.0.0.1:{port}"
    for round_ in range(rounds):
        order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
        for variant in order:
            argv = [c.PYTHON, "-m", "service"]
            name = f"monitor-{variant.replace(' ', '')}"
            spec_env = {**env, **VARIANTS[variant]}
            serving = c.serve(
                name, argv, env=spec_env, port=port, ready_path="/readyz", log_dir=work
            )
            with serving as server:
                for conns in CONNECTIONS:
                    c.run_wrk(
                        "predict_json.lua", url, connections=conns, duration_s=1, body_dir=work
                    )
                    before = cpu_seconds(server.process.pid)
                    result, _ = c.run_wrk(
                        "predict_json.lua",
                        url,
                        connections=conns,
                        duration_s=duration_s,
                        body_dir=work,
                    )
                    figures.add(variant, conns, result, cpu_seconds(server.process.pid) - before)
                if variant != "off":
                    figures.monitored[variant] = _monitored(port)
    return figures


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def _monitored(port: int) -> str:
    """What the monitor counted in this server's run: images and dropped ones."""
    status, body = c.http_get(port, "/monitor/relu", timeout_s=10)
    if status != 200:
        return f"GET /monitor/relu: {status}"
    data = orjson.loads(body)
    return (
        f"counted {data['images']} images, dropped {data['dropped']} (1 in {data['sample_every']})"
    )


def report(figures: Figures, duration_s: float, rounds: int) -> list[str]:
    """The table and the targets with PASS/FAIL, as lines."""
    lines = [
        f"\nReLU monitor cost: /predict JSON, 1 image; {rounds} rounds x {duration_s:g} s per row, "
        f"medians; default sampling: 1 in {_DEFAULT_EVERY}",
        f"{'variant':10} {'p50 c1 ms':>10} {'req/s c1':>9} {'CPU us/req c1':>14} "
        f"{'p50 c64 ms':>11} {'req/s c64':>10} {'CPU us/req c64':>15}",
    ]
    for variant in VARIANTS:
        lines.append(
            f"{variant:10} {figures.median(figures.p50_ms, variant, 1):10.3f} "
            f"{figures.median(figures.rps, variant, 1):9.0f} "
            f"{figures.median(figures.cpu_us, variant, 1):14.0f} "
            f"{figures.median(figures.p50_ms, variant, 64):11.3f} "
            f"{figures.median(figures.rps, variant, 64):10.0f} "
            f"{figures.median(figures.cpu_us, variant, 64):15.0f}"
        )
    for variant, counted in figures.monitored.items():
        lines.append(f"  {variant}: {counted} (last round)")
    for variant, (max_p50, min_rps) in TARGETS.items():
        for name, table, conns, bound, fits in (
            ("p50 c1", figures.p50_ms, 1, max_p50, float.__le__),
            ("req/s c64", figures.rps, 64, min_rps, float.__ge__),
        ):
            ratios = figures.ratios(table, variant, conns)
            ratio = statistics.median(ratios)
            sign = "<=" if fits is float.__le__ else ">="
            lines.append(
                f"[{'PASS' if fits(ratio, bound) else 'FAIL'}] monitor {variant}: {name} "
                f"{ratio:.3f}x off (target {sign} {bound:.2f}x; rounds "
                f"{min(ratios):.3f}..{max(ratios):.3f})"
            )
    for variant in (v for v in VARIANTS if v != "off"):
        spread = []
        for conns in CONNECTIONS:
            ratios = figures.ratios(figures.cpu_us, variant, conns)
            spread.append(
                f"c{conns} {statistics.median(ratios):.3f}x ({min(ratios):.3f}..{max(ratios):.3f})"
            )
        lines.append(
            f"server CPU per request, monitor {variant} / off: {', '.join(spread)} (less "
            "sensitive to other load than latency)"
        )
    return lines


def instructions_per_request(model: Path, work: Path) -> dict[str, float]:
    """CPU instructions per JSON /predict request of each variant (callgrind, all threads: the
    monitor's counting thread included, settled before each block boundary), the in-process
    driver of bench/instructions.py; independent of the machine's load, unlike the wrk rows."""
    native = instructions.time_app("relu", model, requests=200, blocks=1)
    pin = ["--inline-max-images", str(native["inline_max_images"])]
    low, high = instructions.N1, instructions.N2

    def one(variant: str) -> float:
        out = work / f"monitor-{variant.replace(' ', '')}.callgrind"
        argv = [*instructions.VALGRIND, f"--callgrind-out-file={out}"]
        argv += instructions.driver_argv(
            "relu",
            model,
            (low, high),
            "--mark",
            "--warmup",
            str(instructions.WARMUP),
            *pin,
            "--ready-timeout",
            "3000",
        )
        env = {**instructions.driver_env(model), **VARIANTS[variant]}
        instructions.run_driver_process(argv, env, f"callgrind run, monitor {variant}")
        parts = sorted(out.parent.glob(f"{out.name}.*"), key=lambda p: int(p.suffix[1:]))
        totals = [instructions.read_total(part) for part in parts[1:3]]
        return (totals[1] - totals[0]) / (high - low)

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(VARIANTS, pool.map(one, VARIANTS), strict=True))


def session_lines(model: Path, rounds: int = 9) -> list[str]:
    """Why sampled images get a second forward pass instead of one session with the activations
    as outputs: ONNX Runtime's CPU time per image (thread time, medians of ``rounds`` interleaved
    rounds) of the served graph, of that graph with the four ReLU outputs added (fetching the
    logits only, or everything), and of the two-session way (served run + probe run)."""
    import numpy as np

    from service.classifier.model import Classifier
    from service.classifier.monitor.probe import _with_outputs
    from service.session import open_session

    classifier = Classifier(model)
    data = model.read_bytes()
    tensors = list(classifier.metadata.activation_outputs.values())
    plain, probe = open_session(data), open_session(_with_outputs(data, tensors))
    runs = {
        "served graph, logits": [(plain, ["logits"])],
        "with ReLU outputs, logits only": [(probe, ["logits"])],
        "with ReLU outputs, all": [(probe, ["logits", *tensors])],
        "served + probe (two runs)": [(plain, ["logits"]), (probe, tensors)],
    }
    lines = ["\nONNX Runtime CPU us per image (thread time; medians, lowest..highest round):"]
    for size, repeat in ((1, 2000), (25, 200), (64, 100)):
        feed = {"input": np.random.default_rng(0).random((size, 1, 8, 8), np.float32)}
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(rounds):
            for name, calls in runs.items():
                began = time.thread_time_ns()
                for _ in range(repeat):
                    for session, outputs in calls:
                        session.run(outputs, feed)
                times[name].append((time.thread_time_ns() - began) / repeat / size / 1e3)
        base = statistics.median(times["served graph, logits"])
        for name, values in times.items():
            lines.append(
                f"  batch {size:2} {name:32} {statistics.median(values):7.1f} "
                f"({min(values):.1f}..{max(values):.1f})  {statistics.median(values) / base:.2f}x"
            )
    return lines


def instruction_lines(counts: dict[str, float]) -> list[str]:
    off = counts["off"]
    lines = ["\nCPU instructions per /predict request (callgrind, in-process, all threads):"]
    for variant, count in counts.items():
        lines.append(f"  monitor {variant:8} {count:12,.0f}  {count / off:.3f}x off")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.monitor", description=__doc__)
    parser.add_argument("--duration", type=float, default=5, help="seconds per row (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all variants (default 3)")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count CPU instructions per request of each variant (valgrind, ~5 min)",
    )
    parser.add_argument("--no-wrk", action="store_true", help="skip the wrk rows")
    parser.add_argument(
        "--sessions",
        action="store_true",
        help="also time one session with the ReLU outputs against the served one (in-process)",
    )
    args = parser.parse_args(argv)
    problems = [] if args.no_wrk else c.missing_tools()
    if problems:
        print("bench: " + "\n       ".join(problems), file=sys.stderr)
        return 2
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="relu-serve-bench-") as tmp:
        model = Path(tmp) / "digits.onnx"
        argv_export = [c.PYTHON, "-m", "model_export", "--dry-run", "--out", str(model)]
        subprocess.run(argv_export, cwd=c.ROOT, check=True, capture_output=True)
        if not args.no_wrk:
            figures = measure(model, Path(tmp), duration_s=args.duration, rounds=args.rounds)
            lines += report(figures, args.duration, args.rounds)
        if args.instructions:
            lines += instruction_lines(instructions_per_request(model, Path(tmp)))
        if args.sessions:
            lines += session_lines(model)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
