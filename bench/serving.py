"""`make bench`: relu-serve against the bare-ASGI ceiling and the tutorial FastAPI, one table.

Exports the models into a temporary directory, measures in-process ONNX Runtime and activation
times, starts each server on core 0 (one uvicorn worker), drives it with wrk on core 1, counts
the CPU instructions per /predict request of relu-serve and the ceiling (bench/instructions.py,
valgrind), and prints one table, memory figures and the issue's targets with PASS/FAIL from this
run's ratios.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import orjson
from PIL import Image

from bench import _common as c
from bench import instructions, monitor, v2_vs_peers
from service.api.schemas import predict as schemas
from service.metadata import INPUT_NAME, OUTPUT_NAME

#: The digit "0" of the digits test data (8x8, raw 0..16), the one the /predict docs show.
ZERO = np.array(schemas.ZERO, dtype=np.float32)
BOUNDARY = "relu-serve-bench-boundary"  # the same in bench/wrk/predict_png.lua
ACTIVATE_SIZES = {"1e3": 1_000, "1e5": 100_000, "1e6": 1_000_000}
#: The heavier variant, picked by in-process ORT time per image at batch 1 vs 64 (measured here,
#: same moment): width 64 + hidden 8192 (a 32 MB hidden layer, read once per run) 0.83 vs
#: 0.13 ms, so per-batch cost dominates and batching can pay; width 128 + hidden 2048 0.69 vs
#: 0.19 ms; --width 256 alone is compute-bound (1.8 vs 1.4 ms); the default model (19 vs 7 us)
#: is dominated by HTTP. Each run prints its own "in-process" lines.
HEAVY_WIDTH, HEAVY_HIDDEN = 64, 8192

RELU_SERVE = [c.PYTHON, "-m", "service"]
UVICORN = [c.PYTHON, "-m", "uvicorn", "--factory", "--workers", "1", "--no-access-log"]
UVICORN += ["--log-level", "warning", "--host", "127.0.0.1"]


@dataclass(frozen=True)
class ServerSpec:
    key: str
    argv: list[str]
    env: dict[str, str]
    ready_path: str


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str
    script: str
    connections: int
    body: str | None = None  # overrides the script's default body file
    images: int = 0  # images per request, where images/s means something
    quick: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} c{self.connections}"


@dataclass
class Row:
    scenario: Scenario
    result: c.WrkResult | None = None
    failure: str | None = None
    ratio: float | None = None
    versus: str = ""

    @property
    def images_per_s(self) -> float | None:
        if self.result is None or not self.scenario.images:
            return None
        return self.result.ok_per_s * self.scenario.images


@dataclass
class Reference:
    """In-process figures the HTTP rows are compared with."""

    images_per_s: dict[str, float] = field(default_factory=dict)  # "digits b64" -> images/s
    activate_ms: float | None = None  # relu value+grad on 1e6 float32 plus two payload copies


def scenarios() -> list[Scenario]:
    """Every row of the full table; ``quick`` marks the smoke-check subset (one per kind)."""
    rows = []
    for conns in (1, 16, 64):
        for kind in ("json", "npy", "png"):
            quick = conns == 64 or (conns == 1 and kind == "json")
            script = f"predict_{kind}.lua"
            rows.append(Scenario(f"predict {kind}", "relu-serve", script, conns, None, 1, quick))
    for conns in (1, 16):
        script = "predict_npy64.lua"
        rows.append(Scenario("predict npy x64", "relu-serve", script, conns, None, 64, conns == 16))
    for size in ACTIVATE_SIZES:
        for kind in ("json", "npy"):
            script, body = f"activate_{kind}.lua", f"activate_{size}.{kind}"
            rows.append(
                Scenario(f"activate {kind} {size}", "relu-serve", script, 1, body, 0, size == "1e5")
            )
    for conns in (1, 16, 64):
        rows.append(
            Scenario("ceiling json", "ceiling", "predict_json.lua", conns, None, 1, conns != 16)
        )
    rows.append(Scenario("ceiling echo npy 1e6", "ceiling", "echo_npy.lua", 1))
    for conns in (1, 64):
        rows.append(
            Scenario("tutorial json", "tutorial", "predict_json.lua", conns, None, 1, conns == 64)
        )
    for state in ("off", "on"):
        for conns in (1, 64):
            name = f"heavy batching-{state} json"
            rows.append(Scenario(name, f"heavy-{state}", "predict_json.lua", conns, None, 1, True))
    return rows


def servers(models: dict[str, Path], port: int) -> dict[str, ServerSpec]:
    relu_env = c.relu_env(port)
    uvicorn = [*UVICORN, "--port", str(port)]
    return {
        "relu-serve": ServerSpec(
            "relu-serve",
            RELU_SERVE,
            {**relu_env, "RELU_SERVE_MODEL_PATH": str(models["digits"])},
            "/readyz",
        ),
        "ceiling": ServerSpec(
            "ceiling",
            [*uvicorn, "--lifespan", "off", "bench.ceiling_asgi:create_app"],
            {"BENCH_MODEL": str(models["digits"])},
            "/",
        ),
        "tutorial": ServerSpec(
            "tutorial",
            [*uvicorn, "bench.tutorial_fastapi:create_app"],
            {"BENCH_MODEL": str(models["digits"])},
            "/openapi.json",
        ),
        **{
            f"heavy-{state}": ServerSpec(
                f"heavy-{state}",
                RELU_SERVE,
                {
                    **relu_env,
                    "RELU_SERVE_MODEL_PATH": str(models.get("heavy", "")),
                    "RELU_SERVE_BATCHING": "true" if state == "on" else "false",
                },
                "/readyz",
            )
            for state in ("off", "on")
        },
    }


def export_models(directory: Path, heavy_args: list[str] | None) -> dict[str, Path]:
    """The default digits model and, given ``heavy_args``, the heavier variant (dry runs:
    trained weights would not change the speed)."""
    models = {"digits": directory / "digits.onnx"}
    if heavy_args is not None:
        models["heavy"] = directory / "heavy.onnx"
    for name, path in models.items():
        extra = heavy_args if name == "heavy" and heavy_args else []
        argv = [c.PYTHON, "-m", "model_export", "--dry-run", "--out", str(path), *extra]
        print(f"exporting {name}: {' '.join(argv[1:])}", flush=True)
        subprocess.run(argv, cwd=c.ROOT, check=True, capture_output=True)
    return models


def write_bodies(directory: Path) -> None:
    (directory / "predict_1.json").write_bytes(orjson.dumps({"inputs": [ZERO.tolist()]}))
    _save_npy(directory / "predict_1.npy", ZERO[None])
    rng = np.random.default_rng(0)
    batch = np.clip(ZERO + rng.normal(0, 1, (64, 8, 8)), 0, 16).astype(np.float32)
    _save_npy(directory / "predict_64.npy", batch)
    png = io.BytesIO()
    big = np.kron(ZERO * (255 / 16), np.ones((4, 4))).astype(np.uint8)  # 32x32, light on dark
    Image.fromarray(big).save(png, format="PNG")
    part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="zero.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    multipart = part + png.getvalue() + f"\r\n--{BOUNDARY}--\r\n".encode()
    (directory / "predict_1.multipart").write_bytes(multipart)
    for name, size in ACTIVATE_SIZES.items():
        x = rng.standard_normal(size).astype(np.float32)
        document = {"function": "relu", "x": x, "dtype": "float32", "outputs": ["value", "grad"]}
        body = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
        (directory / f"activate_{name}.json").write_bytes(body)
        _save_npy(directory / f"activate_{name}.npy", x)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as out:
        np.save(out, array)


def measure_in_process(models: dict[str, Path]) -> Reference:
    """ONNX Runtime alone (1 thread, no spinning, server core) and relu on 1e6 floats."""
    reference = Reference()
    with c.on_core(c.SERVER_CPU):
        for name, path in models.items():
            session = c.bench_session(str(path))
            shape = session.get_inputs()[0].shape[1:]
            for batch in (1, 64):
                x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
                seconds = c.seconds_per_call(partial(session.run, [OUTPUT_NAME], {INPUT_NAME: x}))
                reference.images_per_s[f"{name} b{batch}"] = batch / seconds
                print(
                    f"in-process {name:6} batch {batch:2}: {seconds * 1e3:8.3f} ms per run, "
                    f"{seconds / batch * 1e6:8.1f} us per image, {batch / seconds:9.0f} images/s",
                    flush=True,
                )
        reference.activate_ms = _activate_reference_ms()
    return reference


def _activate_reference_ms() -> float | None:
    try:
        from service.activations import evaluate, get_activation
    except ImportError:
        return None
    x = np.random.default_rng(1).standard_normal(1_000_000).astype(np.float32)
    relu = get_activation("relu")
    compute = c.seconds_per_call(lambda: evaluate(relu, x, {}, ["value", "grad"]), blocks=3)
    copy = c.seconds_per_call(x.tobytes, blocks=3)
    total_ms = (compute + 2 * copy) * 1e3
    print(
        f"in-process relu value+grad 1e6 float32: {compute * 1e3:.2f} ms, one 4 MB payload "
        f"copy {copy * 1e3:.2f} ms -> reference {total_ms:.2f} ms",
        flush=True,
    )
    return total_ms


@dataclass
class Memory:
    idle_mb: float | None = None
    soak_start_mb: float | None = None
    soak_end_mb: float | None = None
    soak_max_mb: float | None = None

    @property
    def growth(self) -> float | None:
        if self.soak_start_mb is None or self.soak_end_mb is None:
            return None
        return self.soak_end_mb / self.soak_start_mb - 1


def run_server_rows(
    spec: ServerSpec,
    rows: list[Row],
    *,
    port: int,
    work: Path,
    duration_s: float,
    memory: Memory | None,
    soak_s: float,
) -> None:
    print(f"starting {spec.key} ...", flush=True)
    try:
        with ExitStack() as stack:
            server = stack.enter_context(
                c.serve(
                    spec.key,
                    spec.argv,
                    env=spec.env,
                    port=port,
                    ready_path=spec.ready_path,
                    log_dir=work,
                )
            )
            if memory is not None:
                time.sleep(1.0)
                memory.idle_mb = server.rss_mb()
            url = f"http://127.0.0.1:{port}"
            for row in rows:
                _drive(row, url, work, duration_s)
            if memory is not None and soak_s > 0:
                _soak(server, url, work, soak_s, memory)
    except RuntimeError as exc:
        print(f"  {spec.key}: {exc}", file=sys.stderr, flush=True)
        for row in rows:
            row.failure = row.failure or f"{spec.key} did not start"


def _drive(row: Row, url: str, work: Path, duration_s: float) -> None:
    s = row.scenario
    try:
        # Warm-up that also checks the answers: wrk hands each response to Lua in this run.
        _, failure = c.run_wrk(
            s.script,
            url,
            connections=s.connections,
            duration_s=1,
            body_dir=work,
            body=s.body,
            check=True,
        )
        row.result, _ = c.run_wrk(
            s.script,
            url,
            connections=s.connections,
            duration_s=duration_s,
            body_dir=work,
            body=s.body,
        )
    except RuntimeError as exc:
        row.failure = str(exc)
        return
    row.failure = failure
    r = row.result
    note = f"  (first failure: {failure})" if failure else ""
    print(
        f"  {s.label:32} {r.ok_per_s:9.1f} req/s  p50 {r.p50_ms:8.2f} ms  p99 {r.p99_ms:8.2f} ms"
        f"  errors {r.errors}{note}",
        flush=True,
    )


def _soak(server: c.Server, url: str, work: Path, soak_s: float, memory: Memory) -> None:
    """Full load for ``soak_s`` (JSON /predict, 64 connections), RSS sampled every second."""
    print(f"  soak: {soak_s:.0f} s at 64 connections ...", flush=True)
    memory.soak_start_mb = server.rss_mb()
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append(server.rss_mb())

    with _thread(sample, stop):
        c.run_wrk("predict_json.lua", url, connections=64, duration_s=soak_s, body_dir=work)
    memory.soak_end_mb = server.rss_mb()
    memory.soak_max_mb = max([*samples, memory.soak_end_mb])


@contextmanager
def _thread(target: Callable[[], None], stop: threading.Event) -> Iterator[None]:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def add_ratios(rows: list[Row], reference: Reference) -> None:
    by_label = {row.scenario.label: row for row in rows if row.result is not None}

    def rps(label: str) -> float | None:
        row = by_label.get(label)
        return row.result.ok_per_s if row and row.result and row.result.ok_per_s > 0 else None

    for row in rows:
        s, r = row.scenario, row.result
        if r is None:
            continue
        same_model = s.server in ("relu-serve", "ceiling", "tutorial")
        if same_model and s.images == 1 and (ceiling := rps(f"ceiling json c{s.connections}")):
            row.ratio, row.versus = r.ok_per_s / ceiling, f"ceiling c{s.connections}"
        if s.images == 64 and (inproc := reference.images_per_s.get("digits b64")):
            row.ratio, row.versus = (row.images_per_s or 0) / inproc, "in-process b64"
        if s.server == "heavy-on" and (off := rps(f"heavy batching-off json c{s.connections}")):
            row.ratio, row.versus = r.ok_per_s / off, f"batching off c{s.connections}"
        if s.name.startswith("activate") and s.name.endswith("1e6") and reference.activate_ms:
            row.ratio, row.versus = r.p50_ms / reference.activate_ms, "p50 / in-proc+2 copies"


def print_table(rows: list[Row]) -> None:
    header = f"{'scenario':32} {'req/s':>9} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
    header += f" {'errors':>7} {'ratio':>6}  vs"
    print("\n" + header)
    print("-" * (len(header) + 22))
    for row in rows:
        s, r = row.scenario, row.result
        if r is None:
            print(
                f"{s.label:32} {'-':>9} {'-':>9} {'-':>8} {'-':>8} {'-':>7} {'-':>6}  "
                f"failed: {row.failure}"
            )
            continue
        images = f"{row.images_per_s:9.0f}" if row.images_per_s is not None else f"{'':9}"
        ratio = f"{row.ratio:5.2f}x" if row.ratio is not None else f"{'':6}"
        line = f"{s.label:32} {r.ok_per_s:9.1f} {images} {r.p50_ms:8.2f} {r.p99_ms:8.2f}"
        print(f"{line} {r.errors:7d} {ratio}  {row.versus}")


def print_memory(memory: Memory, soak_s: float) -> None:
    if memory.idle_mb is not None:
        print(
            f"\nRSS of one idle relu-serve worker (digits model, after warm-up): "
            f"{memory.idle_mb:.1f} MiB"
        )
    if memory.growth is not None:
        print(
            f"RSS over a {soak_s:.0f} s full-load run: {memory.soak_start_mb:.1f} -> "
            f"{memory.soak_end_mb:.1f} MiB (max {memory.soak_max_mb:.1f}), "
            f"growth {memory.growth:+.1%}"
        )


def print_targets(
    rows: list[Row],
    reference: Reference,
    memory: Memory,
    soak_s: float,
    counted: instructions.Figures | None,
) -> None:
    by_label = {row.scenario.label: row for row in rows if row.result is not None}

    def ok(label: str) -> c.WrkResult | None:
        row = by_label.get(label)
        return row.result if row else None

    def ratio(a: str, b: str) -> float | None:
        ra, rb = ok(a), ok(b)
        return ra.ok_per_s / rb.ok_per_s if ra and rb and rb.ok_per_s else None

    json64, json1 = ok("predict json c64"), ok("predict json c1")
    heavy_on1, heavy_off1 = ok("heavy batching-on json c1"), ok("heavy batching-off json c1")
    npy64 = [by_label[k] for k in ("predict npy x64 c1", "predict npy x64 c16") if k in by_label]
    best64 = max((row.images_per_s or 0 for row in npy64), default=None)
    inproc64 = reference.images_per_s.get("digits b64")
    act = ok("activate npy 1e6 c1")
    targets: list[tuple[str, float | None, float, str, bool]] = [
        # (what, measured, bound, unit, higher is better)
        (
            "/predict JSON c64 vs ceiling c64",
            ratio("predict json c64", "ceiling json c64"),
            0.75,
            "x",
            True,
        ),
        (
            "/predict JSON c64 vs tutorial FastAPI c64",
            ratio("predict json c64", "tutorial json c64"),
            2.0,
            "x",
            True,
        ),
        ("/predict JSON p50 at c1", json1.p50_ms if json1 else None, 0.25, " ms", False),
        (
            "instructions per /predict request vs ceiling (callgrind)",
            counted.ratio if counted else None,
            instructions.TARGET,
            "x",
            False,
        ),
        (
            "64-image .npy images/s vs in-process b64",
            best64 / inproc64 if best64 and inproc64 else None,
            0.5,
            "x",
            True,
        ),
        (
            "heavy c64: batching on vs off",
            ratio("heavy batching-on json c64", "heavy batching-off json c64"),
            1.5,
            "x",
            True,
        ),
        (
            "heavy p50 at c1: batching on vs off",
            heavy_on1.p50_ms / heavy_off1.p50_ms if heavy_on1 and heavy_off1 else None,
            1.10,
            "x",
            False,
        ),
        (
            "/activate 1e6 .npy p50 vs in-process + 2 copies",
            act.p50_ms / reference.activate_ms if act and reference.activate_ms else None,
            3.0,
            "x",
            False,
        ),
        ("RSS of one idle worker", memory.idle_mb, 150.0, " MiB", False),
        (
            f"RSS growth over {soak_s:.0f} s at full load (x100 %)",
            memory.growth * 100 if memory.growth is not None else None,
            5.0,
            " %",
            False,
        ),
    ]
    print("\ntargets (ratios from this run):")
    for what, value, bound, unit, higher in targets:
        sign = ">=" if higher else "<="
        if value is None:
            print(f"  n/a   {what} {sign} {bound:g}{unit}: not measured in this run")
            continue
        passed = value >= bound if higher else value <= bound
        print(f"  {'PASS' if passed else 'FAIL'}  {what} {sign} {bound:g}{unit}: {value:.2f}{unit}")
    echo = ok("ceiling echo npy 1e6 c1")
    if act and echo:
        print(
            f"  info  /activate 1e6 .npy p50 vs a bare-ASGI echo of the same bytes (4 MB in, "
            f"8 MB out): {act.p50_ms / echo.p50_ms:.2f}x ({echo.p50_ms:.2f} ms)"
        )
    if json64 and json64.errors:
        print(f"  note: predict json c64 had {json64.errors} errors")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.serving", description=__doc__)
    parser.add_argument(
        "--duration", type=float, help="seconds per row (default 8; 3 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer rows, 3 s each: a smoke check")
    parser.add_argument(
        "--only",
        metavar="TEXT",
        help="rows whose name contains TEXT (`--only monitor`: the ReLU monitor section alone, "
        "`--only v2`: the v2 section alone, bench/v2_vs_peers.py)",
    )
    parser.add_argument(
        "--instructions-only",
        action="store_true",
        help="only the instructions and in-process us per /predict request (~3 min; valgrind); "
        "--only instructions does the same",
    )
    parser.add_argument(
        "--soak",
        type=float,
        help="seconds of full load for the RSS growth figure "
        "(default 15, 5 with --quick, 0 with --only; the issue asks for --soak 60)",
    )
    parser.add_argument(
        "--heavy-width",
        type=int,
        default=HEAVY_WIDTH,
        help=f"--width of the heavier model (default {HEAVY_WIDTH})",
    )
    parser.add_argument(
        "--heavy-hidden",
        type=int,
        default=HEAVY_HIDDEN,
        help=f"--hidden of the heavier model (default {HEAVY_HIDDEN})",
    )
    args = parser.parse_args(argv)
    if args.only == "instructions":
        args.only, args.instructions_only = None, True
    if args.duration is None:
        args.duration = 3 if args.quick else 8
    if args.soak is None:
        args.soak = 0 if args.only else 5 if args.quick else 15
    return args


def run_servers(
    specs: dict[str, ServerSpec],
    rows: list[Row],
    *,
    port: int,
    work: Path,
    args: argparse.Namespace,
    memory: Memory,
    soak_s: float,
) -> None:
    for key, spec in specs.items():
        mine = [row for row in rows if row.scenario.server == key]
        if mine:
            run_server_rows(
                spec,
                mine,
                port=port,
                work=work,
                duration_s=args.duration,
                memory=memory if key == "relu-serve" else None,
                soak_s=soak_s,
            )


def count_instructions(model: Path, args: argparse.Namespace) -> instructions.Figures | None:
    """Instructions and in-process us per /predict request; None when this run skips them
    (--only and --quick do: valgrind alone takes ~3 minutes)."""
    if args.only or args.quick:
        print(
            "instructions per request: skipped with --only/--quick (--instructions-only runs them)"
        )
        return None
    print("counting instructions per /predict request (callgrind, ~3 min) ...", flush=True)
    try:
        return instructions.instructions_per_request(model)
    except RuntimeError as exc:  # the table is still worth printing
        print(f"  instructions: {exc}", file=sys.stderr, flush=True)
        return None


def monitor_cost(model: Path, work: Path, args: argparse.Namespace) -> list[str]:
    """The ReLU monitor's section: off vs on (sampling 1 and default), same build, one run;
    skipped with --only (``--only monitor`` runs it alone)."""
    if args.only:
        return []
    rounds = 1 if args.quick else 3
    print(f"ReLU monitor cost: 3 servers x {rounds} round(s) ...", flush=True)
    try:
        figures = monitor.measure(model, work, duration_s=args.duration, rounds=rounds)
    except RuntimeError as exc:
        return [f"ReLU monitor cost: failed: {exc}"]
    return monitor.report(figures, args.duration, rounds)


def instructions_only() -> int:
    with tempfile.TemporaryDirectory(prefix="relu-serve-bench-") as tmp:
        models = export_models(Path(tmp), None)
        try:
            counted = instructions.instructions_per_request(models["digits"])
        except RuntimeError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
    instructions.print_figures(counted)
    print("\ntargets (ratios from this run):")
    print(instructions.target_line(counted))
    return 0


def chosen_rows(args: argparse.Namespace) -> list[Scenario] | None:
    """The rows this run measures; None (with the reason printed) when it cannot run."""
    problems = c.missing_tools()
    if problems:
        print("bench: " + "\n       ".join(problems), file=sys.stderr)
        return None
    chosen = [s for s in scenarios() if (s.quick or not args.quick)]
    if args.only:
        chosen = [s for s in chosen if args.only in s.label]
    if not chosen:
        print(f"bench: no row matches --only {args.only!r}", file=sys.stderr)
        return None
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for note in c.missing_optional_tools():
        print(f"bench: note: {note}", file=sys.stderr)
    if args.instructions_only:
        return instructions_only()
    if args.only == "monitor":  # the ReLU monitor's cost alone (bench/monitor.py)
        return monitor.main(["--duration", str(args.duration)])
    if args.only == "v2":
        return v2_section(args)
    chosen = chosen_rows(args)
    if chosen is None:
        return 2
    soak_s = args.soak if "relu-serve" in {s.server for s in chosen} else 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="relu-serve-bench-") as tmp:
        work = Path(tmp)
        heavy = ["--width", str(args.heavy_width), "--hidden", str(args.heavy_hidden)]
        wanted = any(s.server.startswith("heavy") for s in chosen)
        models = export_models(work, heavy if wanted else None)
        write_bodies(work)
        reference = measure_in_process(models)
        port = c.free_port()
        rows, memory = [Row(s) for s in chosen], Memory()
        run_servers(
            servers(models, port),
            rows,
            port=port,
            work=work,
            args=args,
            memory=memory,
            soak_s=soak_s,
        )
        monitor_lines = monitor_cost(models["digits"], work, args)
        counted = count_instructions(models["digits"], args)
    add_ratios(rows, reference)
    print(
        f"\n{len(rows)} rows, {args.duration:g} s each, server on core {c.SERVER_CPU}, wrk on core "
        f"{c.LOAD_CPU}, one uvicorn worker, 1 ONNX Runtime thread; {time.monotonic() - started:.0f} s"
    )
    print("req/s: successful responses per second; errors: HTTP status >= 400 + socket errors")
    print_table(rows)
    print_memory(memory, soak_s)
    if counted is not None:
        instructions.print_figures(counted)
    print_targets(rows, reference, memory, soak_s, counted)
    print("\n".join(monitor_lines))
    return 0 if args.only else v2_section(args)


def v2_section(args: argparse.Namespace) -> int:
    """The v2 protocol against KServe's and MLServer's Python servers (bench/v2_vs_peers.py)."""
    print(
        "\n== v2: relu-serve vs KServe ModelServer vs MLServer (bench/v2_vs_peers.py) ==",
        flush=True,
    )
    return v2_vs_peers.main(
        ["--duration", f"{args.duration:g}", *(["--quick"] if args.quick else [])]
    )


if __name__ == "__main__":
    sys.exit(main())
