"""The dashboard's plots from real scrapes: a live server under phases of load, /metrics scraped
every second, drawn with matplotlib (Grafana cannot run here).

`python -m bench.metrics_plot [--out examples/metrics.png]` starts `python -m service` (2 workers,
the model at --model) on the server core, runs wrk on the load core in phases (1, 16 and 64
connections of one-image JSON requests, then 8 connections of 64-image .npy requests) while a
thread sends a trickle of bad requests (422, 404), and plots what /metrics said: requests per
second by status, /predict latency quantiles, images per model run, the queue and model-run
time. Quantiles are computed from the histogram buckets the way Prometheus'
histogram_quantile does, over a 3 s window (a rate()[3s]).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import _common as c
from bench.serving import write_bodies

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
#: (wrk script, connections, label) per phase.
PHASES = [
    ("predict_json.lua", 1, "JSON x1, c1"),
    ("predict_json.lua", 16, "JSON x1, c16"),
    ("predict_json.lua", 64, "JSON x1, c64"),
    ("predict_npy64.lua", 8, ".npy x64, c8"),
]
WINDOW = 3  # scrapes per rate window


@dataclass
class Scrapes:
    times: list[float] = field(default_factory=list)
    samples: list[Samples] = field(default_factory=list)
    phases: list[tuple[float, float, str]] = field(default_factory=list)


def scrape(client: httpx.Client) -> Samples:
    text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scraper(client: httpx.Client, into: Scrapes, stop: threading.Event, start: float) -> None:
    while not stop.wait(1.0):
        into.samples.append(scrape(client))
        into.times.append(time.monotonic() - start)


def trickle(base: str, stop: threading.Event) -> None:
    """Bad requests at ~10/s: values out of range (422) and a path that does not exist (404)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.wait(0.1):
            client.post("/predict", json={"inputs": [[99.0] * 8] * 8})
            client.get("/no-such-path")


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def buckets(samples: Samples, name: str, **labels: str) -> list[tuple[float, float]]:
    want = set(labels.items())
    found: dict[float, float] = {}
    for (n, ls), value in samples.items():
        if n == f"{name}_bucket" and want <= ls:
            le = float(dict(ls)["le"])
            found[le] = found.get(le, 0.0) + value
    return sorted(found.items())


def quantile(q: float, cumulative: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) pairs."""
    if not cumulative or cumulative[-1][1] <= 0:
        return math.nan
    rank = q * cumulative[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in cumulative:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


def windowed(s: Scrapes, value: Callable[[Samples, Samples, float], float]) -> list[float]:
    """``value(newer, older, seconds)`` for each scrape against the one WINDOW before it."""
    out = []
    for i in range(len(s.samples)):
        j = max(0, i - WINDOW)
        dt = s.times[i] - s.times[j]
        out.append(value(s.samples[i], s.samples[j], dt) if dt > 0 else math.nan)
    return out


def delta_buckets(
    new: Samples, old: Samples, name: str, **labels: str
) -> list[tuple[float, float]]:
    before = dict(buckets(old, name, **labels))
    return [(le, count - before.get(le, 0.0)) for le, count in buckets(new, name, **labels)]


def rate(s: Scrapes, name: str, **labels: str) -> list[float]:
    """Per-second increase of a counter (summed over matching series), as rate()[window]."""
    return windowed(
        s, lambda new, old, dt: (total(new, name, **labels) - total(old, name, **labels)) / dt
    )


def hist_quantile(
    s: Scrapes, q: float, name: str, scale: float = 1.0, **labels: str
) -> list[float]:
    """histogram_quantile(q, rate(name_bucket[window])) at each scrape, times ``scale``."""
    return windowed(
        s, lambda new, old, dt: scale * quantile(q, delta_buckets(new, old, name, **labels))
    )


def plot(s: Scrapes, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = s.times
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5), sharex=True)
    requests = "relu_serve_requests_total"
    statuses = sorted({dict(ls)["status"] for (n, ls) in s.samples[-1] if n == requests})
    for status in statuses:
        axes[0][0].plot(t, rate(s, requests, status=status), label=status)
    axes[0][0].set(title="requests/s by status", yscale="log")
    axes[0][0].legend(title="status")
    for q in (0.5, 0.9, 0.99):
        latency = hist_quantile(s, q, "relu_serve_request_duration_seconds", 1000, route="/predict")
        axes[0][1].plot(t, latency, label=f"p{round(q * 100)}")
    axes[0][1].set(title="/predict latency (ms, from the histogram)", yscale="log")
    axes[0][1].legend()
    axes[0][2].plot(t, rate(s, "relu_serve_inference_images_total"))
    axes[0][2].set(title="images classified/s", yscale="log")
    runs = rate(s, "relu_serve_batch_images_count")
    images = rate(s, "relu_serve_batch_images_sum")
    axes[1][0].plot(
        t, [i / r if r else math.nan for i, r in zip(images, runs, strict=True)], label="mean"
    )
    axes[1][0].plot(t, hist_quantile(s, 0.99, "relu_serve_batch_images"), label="p99")
    axes[1][0].set(title="images per model run", yscale="log")
    axes[1][0].legend()
    axes[1][1].plot(t, [total(x, "relu_serve_queue_images") for x in s.samples])
    axes[1][1].set(title="queue (images waiting, at the scrape)")
    for q in (0.5, 0.99):
        run_time = hist_quantile(s, q, "relu_serve_inference_duration_seconds", 1000)
        axes[1][2].plot(t, run_time, label=f"p{round(q * 100)}")
    axes[1][2].set(title="model run time (ms)", yscale="log")
    axes[1][2].legend()
    for ax in axes.flat:
        for begin, end, label in s.phases:
            ax.axvspan(begin, end, alpha=0.08, color="tab:blue")
            ax.text(begin, 1.0, label, transform=ax.get_xaxis_transform(), fontsize=7, va="top")
    for ax in axes[1]:
        ax.set_xlabel("seconds")
    fig.suptitle("relu-serve /metrics, scraped every second (bench/metrics_plot.py)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)


def run(model: Path, out: Path, phase_s: float, workers: int) -> Scrapes:
    port = c.free_port()
    env = {
        "RELU_SERVE_MODEL_PATH": str(model),
        "RELU_SERVE_PORT": str(port),
        "RELU_SERVE_WORKERS": str(workers),
        "RELU_SERVE_LOG_LEVEL": "warning",
    }
    scrapes = Scrapes()
    with tempfile.TemporaryDirectory(prefix="relu-serve-metrics-plot-") as tmp:
        work = Path(tmp)
        write_bodies(work)
        argv = [c.PYTHON, "-m", "service"]
        with c.serve(
            "relu-serve",
            argv,
            env=env,
            port=port,
            ready_path="/readyz",
            log_dir=work,
            ready_timeout_s=600,
        ):
            base = f"http://127.0.0.1:{port}"
            stop = threading.Event()
            start = time.monotonic()
            with httpx.Client(base_url=base, timeout=30) as client:
                threads = [
                    threading.Thread(target=scraper, args=(client, scrapes, stop, start)),
                    threading.Thread(target=trickle, args=(base, stop)),
                ]
                for thread in threads:
                    thread.start()
                time.sleep(3)
                for script, connections, label in PHASES:
                    begin = time.monotonic() - start
                    result, _ = c.run_wrk(
                        script,
                        f"{base}",
                        connections=connections,
                        duration_s=phase_s,
                        body_dir=work,
                    )
                    scrapes.phases.append((begin, time.monotonic() - start, label))
                    print(
                        f"{label}: {result.ok_per_s:,.0f} ok/s, p50 {result.p50_ms:.2f} ms",
                        flush=True,
                    )
                    time.sleep(2)
                stop.set()
                for thread in threads:
                    thread.join()
    plot(scrapes, out)
    return scrapes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.metrics_plot", description=__doc__)
    parser.add_argument("--model", type=Path, default=c.ROOT / "models" / "relu_cnn.onnx")
    parser.add_argument("--out", type=Path, default=c.ROOT / "examples" / "metrics.png")
    parser.add_argument("--phase-s", type=float, default=12.0, help="seconds of each load phase")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    problems = c.missing_tools()
    if problems:
        raise SystemExit("\n".join(problems))
    scrapes = run(args.model, args.out, args.phase_s, args.workers)
    print(f"{len(scrapes.samples)} scrapes plotted to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
