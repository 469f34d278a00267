"""Default training time by PyTorch thread count, on an idle machine and with every core busy.

`.venv/bin/python -m bench.training` runs `python -m model_export` (the default digits model)
with `--threads 1` and `--threads 2`, alternating, first alone and then beside one busy-loop
process per core (what other work, or `stress-ng --cpu 2`, does to a shared machine), and
prints the wall time of each run. Options: `--runs N` per cell, `--limit S` per run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def spin() -> None:
    while True:
        pass


def train(threads: int, out: Path, limit_s: float) -> str:
    """Wall and CPU seconds of one default export (CPU time is what a busy machine disturbs
    least), or the limit it ran past."""
    started = time.perf_counter()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        subprocess.run(
            [sys.executable, "-m", "model_export", "--threads", str(threads), "--out", str(out)],
            check=True,
            capture_output=True,
            timeout=limit_s,
        )
    except subprocess.TimeoutExpired:
        return f"> {limit_s:.0f} s"
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    return f"{wall:.1f} s wall, {used:.1f} s CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs per thread count and load")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds before a run is cut")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.onnx"
        for load in ("idle", "busy"):
            spinners = []
            if load == "busy":
                spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(cores)]
                for process in spinners:
                    process.start()
            try:
                for run in range(args.runs):
                    for threads in args.threads:
                        shown = train(threads, out, args.limit)
                        print(
                            f"{load} ({cores} cores), --threads {threads}, run {run + 1}: {shown}",
                            flush=True,
                        )
            finally:
                for process in spinners:
                    process.terminate()


if __name__ == "__main__":
    main()
