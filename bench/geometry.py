"""Geometry figures: /explain and /regions latency, regions between digit pairs, a plot.

    .venv/bin/python -m bench.geometry [--model models/relu_cnn.onnx]
        [--plot examples/geometry-segment.png] [--plane examples/geometry-plane.png]

Starts `python -m service` as a user would (one worker, default settings), sends every test
digit to POST /explain and a few digit pairs to POST /regions, one request at a time (stdlib
http.client), and prints: p50 latencies, how many test digits sit on a tie, the radius of the
others, and per pair the breakpoints, activation regions, linear pieces, the share of pattern
changes that bend the logits and the decision changes. With --plot it draws the logits along
the first pair's segment with its breakpoints (needs matplotlib, in the export extra); with
--plane it saves a /regions/plane picture.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import _common as c
from bench.service_latency import start
from model_export import data

#: (start, end) as (class, rank within the class in the test split).
PAIRS = [((0, 0), (1, 0)), ((3, 0), (8, 0)), ((4, 0), (9, 0)), ((1, 0), (7, 0)), ((5, 0), (6, 0))]


def post(conn: http.client.HTTPConnection, path: str, body: Any) -> tuple[float, Any]:
    payload = json.dumps(body).encode()
    began = time.perf_counter()
    conn.request("POST", path, payload, {"content-type": "application/json"})
    response = conn.getresponse()
    answer = response.read()
    elapsed = time.perf_counter() - began
    if response.status != 200:
        raise SystemExit(f"{path}: {response.status} {answer[:300]!r}")
    return elapsed, json.loads(answer)


def test_digits() -> tuple[np.ndarray, np.ndarray]:
    """The test split as raw 0..16 integers, and the labels (seed 0, as `make model`)."""
    split = data.split(data.load("digits", 8), seed=0).test
    return (split.x[:, 0] * 16).round().astype(int), split.y


def explain_figures(conn: http.client.HTTPConnection, images: np.ndarray) -> None:
    times, radii, tied = [], [], 0
    for image in images:
        elapsed, body = post(conn, "/explain", {"inputs": image.tolist()})
        times.append(elapsed)
        region = body["region"]
        if region["ties"]:
            tied += 1
        else:
            radii.append(region["radius"])
    print(f"/explain: {len(images)} test digits, p50 {statistics.median(times) * 1e3:.1f} ms")
    print(
        f"  on a tie (radius 0): {tied} ({tied / len(images):.1%}); radius of the others: "
        f"median {statistics.median(radii):.2e}, min {min(radii):.2e}, max {max(radii):.2e}"
    )


def regions_figures(
    conn: http.client.HTTPConnection, images: np.ndarray, labels: np.ndarray
) -> list[dict[str, Any]]:
    times, bends, widths, answers = [], [], [], []
    print(
        "/regions: start -> end | breakpoints | activation regions | linear pieces | bend "
        "| decision changes | passes | s"
    )
    for (a, i), (b, j) in PAIRS:
        start_image = images[np.flatnonzero(labels == a)[i]]
        end_image = images[np.flatnonzero(labels == b)[j]]
        body = {"start": start_image.tolist(), "end": end_image.tolist()}
        elapsed, answer = post(conn, "/regions", body)
        times.append(elapsed)
        regions, pieces = answer["activation_regions"], answer["linear_pieces"]
        bend = (pieces - 1) / max(1, regions - 1)
        bends.append(bend)
        widths.append(float(np.diff([0.0, *answer["breakpoints"], 1.0]).min()))
        changes = ", ".join(f"{t:.4f}" for t in answer["decision_changes"])
        print(
            f"  {a} -> {b} | {len(answer['breakpoints'])} | {regions} | {pieces} | {bend:.1%} "
            f"| {changes} | {answer['passes']} | {elapsed:.2f}"
        )
        answers.append({"body": body, "answer": answer})
    print(
        f"  p50 {statistics.median(times):.2f} s; pattern changes that bend the logits: "
        f"{min(bends):.1%}-{max(bends):.1%}; narrowest region {min(widths):.2e} in t"
    )
    return answers


def plot(conn: http.client.HTTPConnection, first: dict[str, Any], path: Path) -> None:
    """Logits along the segment (from /predict at 2,001 points) over the walk's breakpoints."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start, end = (np.array(first["body"][k], float) for k in ("start", "end"))
    ts = np.linspace(0, 1, 2001)
    logits = []
    for chunk in np.array_split(ts, 3):
        images = start + chunk[:, None, None] * (end - start)
        _, answer = post(conn, "/predict", {"inputs": images.tolist(), "return_logits": True})
        logits += [p["logits"] for p in answer["predictions"]]
    answer = first["answer"]
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=90)
    ax.plot(ts, np.array(logits), linewidth=1)
    low = np.min(logits)
    bends = [p["t0"] for p in answer["pieces"][1:]]
    ax.plot(
        answer["breakpoints"],
        [low - 1.5] * len(answer["breakpoints"]),
        "|",
        color="0.6",
        markersize=6,
        label=f"{len(answer['breakpoints'])} pattern changes",
    )
    ax.plot(
        bends,
        [low - 3.0] * len(bends),
        "|",
        color="k",
        markersize=6,
        label=f"{answer['linear_pieces'] - 1} slope changes",
    )
    for t in answer["decision_changes"]:
        ax.axvline(t, color="r", linestyle="--", linewidth=0.8)
    ax.set_xlabel("t along start + t (end - start); dashed: the label changes")
    ax.set_ylabel("logits")
    ax.legend(loc="upper center", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    print(f"plot: {path} ({path.stat().st_size // 1024} KB)")


def plane(port: int, images: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """The regions near a test 0 on the plane towards a test 1 and a test 2 (span 0.01)."""
    a, b, c_ = (images[np.flatnonzero(labels == k)[0]].tolist() for k in (0, 1, 2))
    body = json.dumps({"a": a, "b": b, "c": c_, "grid": 96, "span": 0.01}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    began = time.perf_counter()
    conn.request("POST", "/regions/plane", body, {"content-type": "application/json"})
    response = conn.getresponse()
    png = response.read()
    elapsed = time.perf_counter() - began
    if response.status != 200:
        raise SystemExit(f"/regions/plane: {response.status} {png[:300]!r}")
    path.write_bytes(png)
    print(
        f"/regions/plane: {response.getheader('x-regions-seen')} regions seen on a "
        f"{response.getheader('x-regions-sampled')}, {elapsed:.2f} s; {path} "
        f"({len(png) // 1024} KB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/relu_cnn.onnx"))
    parser.add_argument("--plot", type=Path, help="write the segment plot here (PNG)")
    parser.add_argument("--plane", type=Path, help="write a /regions/plane picture here (PNG)")
    args = parser.parse_args()
    images, labels = test_digits()
    port = c.free_port()
    process, ready_s = start(args.model.resolve(), port)
    try:
        print(f"ready in {ready_s:.1f} s (warm-up + the evaluator's check against ONNX Runtime)")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        explain_figures(conn, images)
        answers = regions_figures(conn, images, labels)
        if args.plot:
            plot(conn, answers[0], args.plot)
        if args.plane:
            plane(port, images, labels, args.plane)
    finally:
        c.stop(process)


if __name__ == "__main__":
    main()
