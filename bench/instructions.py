"""CPU instructions (callgrind) and in-process time per POST /predict: relu-serve vs the ceiling.

Driver: `python -m bench.instructions --app relu|ceiling --model PATH --requests N [N ...]`
builds the ASGI app in this process (no uvicorn, no sockets), runs its lifespan until /readyz
answers 200, sends warm-up requests, then each block of N requests one after the other on one
uvloop event loop, and prints one result line.

Measurement: `python -m bench.instructions --model PATH` (or `instructions_per_request`) runs
the driver natively (wall clock: the best block of 3 processes), then once per app under
valgrind's callgrind with two blocks of N1 and N2 requests. Callgrind dumps its counters at
each block boundary, so start-up, imports, model loading and warm-up stay out of the blocks,
and (I(N2) - I(N1)) / (N2 - N1) also cancels what a block costs once. The counts depend
neither on load nor on the clock. One process per app, not one per block size: under valgrind
start-up is most of the time (relu-serve ~2 min: imports, and its warm-up at batch 1..1024, as
ONNX Runtime's kernels run ~1000x slower than natively there, ~30 ms per one-image run).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import _common as c
from service.api.schemas.predict import ZERO

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


APPS = {"relu": "relu-serve", "ceiling": "ceiling"}
BODY = orjson.dumps({"inputs": ZERO})
RESULT = "BENCH_INSTRUCTIONS "  # prefix of the driver's one result line
#: Requests before the measured ones: caches, lazy imports and the first GC passes settle.
WARMUP = 50
#: The two measured blocks of the callgrind run (requests); their difference is what counts.
#: Each request takes ~70 ms under callgrind; counts are linear in requests (block means and
#: the slope agree within 0.3 %), so small blocks do.
N1, N2 = 50, 250
TIMING_PROCESSES = 3  # native driver runs per app for the wall-clock figure (see time_apps)
TARGET = 1.3  # relu-serve's instructions per request, at most this many times the ceiling's
#: Callgrind counting instructions only (no cache or branch simulation, no per-instruction or
#: jump data): as fast as callgrind goes, and the counts are the same.
VALGRIND = [
    "valgrind",
    "--tool=callgrind",
    "--dump-before=getppid",  # mark(): a dump at each block boundary
    "--dump-instr=no",
    "--dump-line=no",
    "--collect-jumps=no",
    "--cache-sim=no",
    "--branch-sim=no",
]


# --- the driver: one app in this process ---------------------------------------------------


def request_scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    """The scope uvicorn (httptools) builds for this request, wrk's headers included."""
    headers = [(b"host", b"127.0.0.1:8000")]
    if method == "POST":
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
        "headers": headers,
        "state": {},
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
    }


async def call(app: App, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    """One request: the body in one message (then a disconnect, as a server would say), the
    response collected; returns its status and body."""
    incoming: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop() if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    # uvicorn builds a fresh scope (and headers list) per request; apps may add keys to it.
    await app({**scope, "headers": list(scope["headers"])}, receive, send)
    status = next((m["status"] for m in sent if m["type"] == "http.response.start"), 0)
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def start_lifespan(app: App, timeout_s: float) -> Callable[[], Awaitable[None]]:
    """Run the ASGI lifespan start-up as uvicorn does; return the coroutine that shuts it down."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, inbox.get, outbox.put))

    async def reply() -> Message:
        answer = asyncio.ensure_future(outbox.get())
        done, _ = await asyncio.wait(
            {answer, task}, timeout=timeout_s, return_when="FIRST_COMPLETED"
        )
        if answer not in done:
            answer.cancel()
            problem = task.exception() if task in done else f"no answer in {timeout_s:.0f} s"
            raise SystemExit(f"lifespan failed: {problem!r}")
        return answer.result()

    await inbox.put({"type": "lifespan.startup"})
    if (message := await reply())["type"] != "lifespan.startup.complete":
        raise SystemExit(f"lifespan start-up failed: {message}")

    async def shutdown() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await reply()

    return shutdown


async def wait_ready(app: App, timeout_s: float) -> None:
    """Poll GET /readyz until 200: relu-serve warms the model up in a task after start-up."""
    scope = request_scope("GET", "/readyz", b"")
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = await call(app, scope, b"")
        if status == 200:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"not ready after {timeout_s:.0f} s: {status} {body[:300]!r}")
        await asyncio.sleep(0.2)  # warm-up runs in threads; a slow poll leaves them the CPU


def build_app(kind: str, model: Path) -> App:
    """relu-serve as `python -m service` builds it (RELU_SERVE_* settings at their defaults,
    which driver_env sees to, but 1 ONNX Runtime thread, and metrics as BENCH_METRICS says:
    on by default, off with --metrics off), or the ceiling."""
    if kind == "relu":
        from service.__main__ import metrics_directory
        from service.config import Settings

        metrics = os.environ.get("BENCH_METRICS", "on") == "on"
        # No gRPC port: the figure is the HTTP path alone (and 8001 may be taken).
        settings = Settings(model_path=model, intra_op_threads=1, metrics=metrics, grpc_port=0)
        # As `python -m service` does: the metrics directory before service.app (and with it
        # prometheus_client) is imported, so that values go to the per-process files.
        atexit.register(metrics_directory(settings))
        from service.app import create_app

        app: App = create_app(settings)
        return app
    os.environ["BENCH_MODEL"] = str(model)
    from bench.ceiling_asgi import create_app as create_ceiling

    ceiling: App = create_ceiling()
    return ceiling


def v2_body(images: int) -> tuple[bytes, bytes]:
    """A KServe v2 binary-tensor infer of ``images`` 8x8 images as tritonclient sends it:
    (JSON head, body). One image is all zeros; more are the v2 bench's (/predict's example
    image plus clipped noise)."""
    import numpy as np

    from bench.v2_wire import binary_body

    pixels = np.zeros((1, 1, 8, 8), dtype=np.float32)
    if images > 1:
        example = np.array(ZERO, dtype=np.float32).reshape(1, 1, 8, 8)
        noise = np.random.default_rng(0).normal(0, 1, (images, 1, 8, 8))
        pixels = np.clip(example + noise, 0, 16).astype(np.float32)
    body, length = binary_body("input", pixels, "logits")
    return body[:length], body


#: --request kinds: /predict's JSON body, a one-image v2 binary infer, a 64-image one.
REQUESTS = ("predict", "v2", "v2x64")


def request_of(kind: str) -> tuple[dict[str, Any], bytes, bytes]:
    """The scope, body and a marker every good answer holds, of a ``--request`` kind."""
    if kind == "predict":
        return request_scope("POST", "/predict", BODY), BODY, b'"predictions"'
    head, body = v2_body(64 if kind == "v2x64" else 1)
    scope = request_scope("POST", "/v2/models/relu_cnn/infer", body)
    scope["headers"] = [
        (b"host", b"127.0.0.1:8000"),
        (b"inference-header-content-length", b"%d" % len(head)),
        (b"content-length", b"%d" % len(body)),
    ]
    return scope, body, b'"binary_data_size"'


async def send_requests(app: App, count: int, kind: str = "predict") -> None:
    """``count`` requests (JSON /predict, or a v2 binary infer); every answer must be 200 with
    its marker (the first /predict one is parsed whole, the rest searched: parsing each would
    count the driver's work)."""
    scope, request_body, marker = request_of(kind)
    for index in range(count):
        status, body = await call(app, scope, request_body)
        if status != 200 or marker not in body:
            raise SystemExit(f"request {index}: status {status}, body {body[:300]!r}")
        if index == 0 and kind == "predict" and "predictions" not in orjson.loads(body):
            raise SystemExit(f"no predictions in {body[:300]!r}")


def find_inference(app: App) -> Any:
    """relu-serve's Inference object: app.state.runtime.inference (or app.state.inference, as
    before the Runtime), None if neither is there."""
    state = getattr(app, "state", None)
    for owner in (getattr(state, "runtime", None), state):
        inference = getattr(owner, "inference", None)
        if inference is not None:
            return inference
    return None


def inline_images(app: App) -> int | None:
    """How many images relu-serve runs inline on the event loop (its calibration), if known."""
    value = getattr(find_inference(app), "inline_max_images", None)
    return value if isinstance(value, int) else None


def pin_inline(app: App, images: int) -> None:
    """Use the native run's calibration: under valgrind the model looks ~1000x slower, so the
    service would time it past its inline budget and hop every request to a thread instead."""
    inference = find_inference(app)
    if inference is None or not hasattr(inference, "inline_max_images"):
        raise SystemExit("cannot pin relu-serve's inline limit: no Inference found on app.state")
    inference.inline_max_images = images
    if getattr(inference, "batcher", None) is not None:
        inference.batcher.inline_max_items = images


def mark() -> None:
    """A block boundary for callgrind: it dumps its counters on entering getppid (see
    VALGRIND), which nothing else calls while requests are served."""
    os.getppid()


async def measure_blocks(app: App, args: argparse.Namespace) -> list[float]:
    """Microseconds per request of each block (best of ``--repeat``), mark()ed with --mark."""
    best: list[float] = []
    for count in args.requests:
        if args.mark:
            settle(app)
            mark()
        seconds = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            await send_requests(app, count, args.request)
            seconds.append(time.perf_counter() - started)
        best.append(min(seconds) / max(count, 1) * 1e6)
    if args.mark:
        settle(app)
        mark()
    return best


#: Under callgrind requests run ~300x slower; the ReLU monitor's thread gathers this long per
#: probe run (natively 5 ms), so that its runs carry ~25 images, as natively at 1 connection.
MONITOR_GATHER_S = 2.0


def gather_like_native(app: App, callgrind: bool) -> None:
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    relu = getattr(getattr(runtime, "monitoring", None), "relu", None)
    if relu is not None and callgrind:
        relu.collect_s = MONITOR_GATHER_S


def settle(app: App) -> None:
    """Wait until relu-serve's ReLU monitor has counted the images sampled so far: its
    background thread's work then lands in the block of the requests that caused it."""
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    relu = getattr(getattr(runtime, "monitoring", None), "relu", None)
    if relu is not None and not relu.flush(timeout_s=600):
        raise SystemExit("the ReLU monitor did not catch up within 600 s")


async def count_calls(app: App, requests: int, kind: str) -> dict[str, float]:
    """Python frames entered per request, by function: where the interpreter's share of the
    instructions goes, which callgrind (C level) cannot name. Coroutine resumptions count too."""
    counts: dict[str, int] = {}

    def profile(frame: Any, event: str, arg: object) -> None:
        if event == "call":
            code = frame.f_code
            where = f"{code.co_qualname} ({'/'.join(Path(code.co_filename).parts[-2:])})"
            counts[where] = counts.get(where, 0) + 1

    sys.setprofile(profile)
    try:
        await send_requests(app, requests, kind)
    finally:
        sys.setprofile(None)
    return {k: v / requests for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    app = build_app(args.app, args.model)
    shutdown = None
    if args.app == "relu":  # the ceiling is served with --lifespan off and is ready at once
        shutdown = await start_lifespan(app, args.ready_timeout)
        await wait_ready(app, args.ready_timeout)
    result: dict[str, Any] = {"app": args.app, "inline_max_images": inline_images(app)}
    if args.inline_max_images is not None and args.app == "relu":  # the ceiling has no limit
        pin_inline(app, args.inline_max_images)
    gather_like_native(app, args.mark)
    await send_requests(app, args.warmup, args.request)
    if args.count_calls:
        result["calls"] = await count_calls(app, args.count_calls, args.request)
    result["us_per_request"] = await measure_blocks(app, args)
    if shutdown is not None:
        await shutdown()
    return result


def run_driver(args: argparse.Namespace) -> int:
    try:
        import uvloop
    except ImportError:  # uvicorn falls back to asyncio too
        result = asyncio.run(drive(args))
    else:  # what uvicorn[standard] serves with ("auto" loop)
        result = uvloop.run(drive(args))
    print(RESULT + json.dumps(result), flush=True)
    return 0


# --- the measurement: driver runs, natively and under callgrind ------------------------------


@dataclass
class AppFigures:
    instructions: float | None = None  # per request: the slope between the two blocks
    block_totals: list[int] = field(default_factory=list)  # instructions of each block
    us_per_request: float | None = None  # in-process wall clock, native: best block of all
    inline_max_images: int | None = None  # relu-serve's calibration in the native run
    valgrind_s: float | None = None  # how long its callgrind run took


@dataclass
class Figures:
    model: Path
    apps: dict[str, AppFigures] = field(default_factory=dict)
    counts: tuple[int, int] = (N1, N2)
    seconds: float = 0.0
    skipped: str | None = None  # why instructions were not counted
    outputs: dict[str, Path] = field(default_factory=dict)  # app -> its callgrind file
    #: relu-serve's request kind (``--request``); the ceiling always answers /predict.
    request: str = "predict"

    @property
    def ratio(self) -> float | None:
        relu, ceiling = self.apps.get("relu"), self.apps.get("ceiling")
        if relu and ceiling and relu.instructions and ceiling.instructions:
            return relu.instructions / ceiling.instructions
        return None


def driver_env(model: Path) -> dict[str, str]:
    """The same environment for every run: no RELU_SERVE_* or BENCH_* settings leaking in, a
    fixed hash seed (set and dict orders, hence instruction counts, repeat) and bench malloc."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELU_SERVE_", "BENCH_"))}
    env["BENCH_METRICS"] = os.environ.get("BENCH_METRICS", "on")
    return {**env, **c.MALLOC_ENV, "PYTHONHASHSEED": "0", "BENCH_MODEL": str(model)}


def driver_argv(app: str, model: Path, requests: Sequence[int], *extra: str) -> list[str]:
    argv = [c.PYTHON, "-m", "bench.instructions", "--app", app, "--model", str(model)]
    return [*argv, "--requests", *map(str, requests), *extra]


def run_driver_process(argv: Sequence[str], env: dict[str, str], what: str) -> dict[str, Any]:
    """Run one driver; return its result line (RuntimeError with its stderr when it fails)."""
    done = subprocess.run(argv, cwd=c.ROOT, env=env, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT) and done.returncode == 0:
            result: dict[str, Any] = json.loads(line[len(RESULT) :])
            return result
    # The driver's own lines: valgrind's (==pid== ...) would fill the tail with its summary.
    mine = [line for line in done.stderr.splitlines() if not line.startswith("==")]
    raise RuntimeError(f"{what} failed (status {done.returncode}):\n" + "\n".join(mine[-25:]))


def time_app(
    app: str, model: Path, requests: int = 1000, blocks: int = 5, request: str = "predict"
) -> dict[str, Any]:
    """In-process microseconds per request, natively: the best of ``blocks`` blocks (on the
    server core if taskset can put it there, as the wrk rows' servers are)."""
    argv = driver_argv(app, model, [requests], "--warmup", "500", "--repeat", str(blocks))
    if app == "relu":
        argv += ["--request", request]
    if shutil.which("taskset"):
        argv = c.pinned(c.SERVER_CPU, argv)
    return run_driver_process(argv, driver_env(model), f"in-process timing of {APPS[app]}")


def time_apps(figures: Figures, processes: int = TIMING_PROCESSES) -> None:
    """Both apps' wall-clock figure: the best of a few processes, the apps taking turns. On
    this VM whole processes run fast or slow (best of 10 blocks in one process: 57 to 96 us
    for the ceiling), so more blocks in one process do not help; more processes do."""
    for _ in range(processes):
        for app, f in figures.apps.items():
            result = time_app(app, figures.model, request=figures.request)
            best = result["us_per_request"][0]
            f.us_per_request = min(best, f.us_per_request or best)
            if f.inline_max_images is None:
                f.inline_max_images = result["inline_max_images"]


def callgrind_blocks(
    app: str, model: Path, counts: Sequence[int], out: Path, extra: Sequence[str]
) -> list[int]:
    """Instructions of each block of ``counts`` requests, from one callgrind run of the driver.

    The driver marks each block boundary (mark()), where callgrind dumps and zeroes its
    counters: start-up, imports, model loading and warm-up land in part 1, block i in part i+1.
    """
    for stale in out.parent.glob(f"{out.name}*"):  # a kept folder's earlier run
        stale.unlink()
    argv = [*VALGRIND, f"--callgrind-out-file={out}"]
    argv += driver_argv(app, model, counts, "--mark", "--warmup", str(WARMUP), *extra)
    run_driver_process(argv, driver_env(model), f"callgrind run of {APPS[app]}")
    parts = sorted(out.parent.glob(f"{out.name}.*"), key=lambda p: int(p.suffix[1:]))
    if len(parts) != len(counts) + 1:  # one dump per mark; the rest of the run goes to ``out``
        raise RuntimeError(f"{APPS[app]}: {len(parts)} callgrind dumps, expected {len(counts) + 1}")
    return [read_total(part) for part in parts[1:]]


def read_total(path: Path) -> int:
    """Instructions executed (all threads): the callgrind file's totals: (or summary:) line."""
    text = path.read_text(errors="replace")
    found = re.search(r"^(?:totals|summary):\s*(\d+)", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no totals in {path}")
    return int(found.group(1))


def count_instructions(figures: Figures, model: Path, work: Path, jobs: int) -> None:
    """One callgrind run per app, ``jobs`` at a time; instructions per request are the
    difference of the two blocks over the difference of their sizes (fixed per-block costs
    cancel)."""

    def one(app: str) -> list[int]:
        started = time.monotonic()
        out = work / f"{app}.callgrind"
        totals = callgrind_blocks(app, model, figures.counts, out, pin_args(figures, app))
        figures.apps[app].valgrind_s = time.monotonic() - started
        figures.outputs[app] = out
        return totals

    with ThreadPoolExecutor(jobs) as pool:
        results = dict(zip(APPS, pool.map(one, APPS), strict=True))
    (low, high) = figures.counts
    for app, totals in results.items():
        figures.apps[app].block_totals = totals
        figures.apps[app].instructions = (totals[1] - totals[0]) / (high - low)


def pin_args(figures: Figures, app: str) -> list[str]:
    """Driver options that give relu-serve the inline limit it calibrated natively, and its
    request kind (the ceiling serves /predict only)."""
    inline = figures.apps[app].inline_max_images
    pinned = ["--inline-max-images", str(inline)] if inline is not None else []
    return [*pinned, "--request", figures.request] if app == "relu" else pinned


@contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="relu-serve-callgrind-") as tmp:
        yield Path(tmp)


def instructions_per_request(
    model: Path,
    *,
    counts: tuple[int, int] = (N1, N2),
    jobs: int = 2,
    keep: Path | None = None,
    profile: int = 0,
    request: str = "predict",
) -> Figures:
    """Both apps' in-process us per request and, with valgrind, instructions per request.

    ``keep``: a folder for the callgrind files (else a temporary one); ``profile``: print where
    the instructions go (per library, relu-serve's top ``profile`` C and Python functions).
    """
    if not 0 < counts[0] < counts[1]:
        raise ValueError(f"counts must be 0 < N1 < N2, got {counts}")
    started = time.monotonic()
    figures = Figures(model, {app: AppFigures() for app in APPS}, counts, request=request)
    time_apps(figures)
    if shutil.which("valgrind") is None:
        figures.skipped = f"valgrind is not installed; install it with: {c.VALGRIND_HINT}"
    else:
        with workdir(keep) as work:
            count_instructions(figures, model, work, jobs)
            if profile:
                print_profile(figures, profile)
    figures.seconds = time.monotonic() - started
    return figures


# --- reports ---------------------------------------------------------------------------------


def print_figures(figures: Figures) -> None:
    what = {"v2": "a v2 binary infer, one", "v2x64": "a v2 binary infer, 64"}.get(
        figures.request, "POST /predict, JSON body, one"
    )
    print(f"\nrelu-serve: {what} 8x8 image(s); ceiling: POST /predict, JSON body; ASGI app")
    print("called in-process (no server):")
    for app, name in APPS.items():
        f = figures.apps[app]
        count = f"{f.instructions:11,.0f} instructions" if f.instructions else f"{'-':>24}"
        wall = f"{f.us_per_request:7.1f} us" if f.us_per_request else "-"
        print(f"  {name:11} {count} per request (callgrind)   {wall} per request (wall clock)")
    if figures.skipped:
        print(f"  instructions not counted: {figures.skipped}")
    elif figures.ratio is not None:
        slow = max(f.valgrind_s or 0 for f in figures.apps.values())
        print(
            f"  relu-serve / ceiling: {figures.ratio:.2f}x instructions "
            f"(blocks of {figures.counts[0]} and {figures.counts[1]} requests; callgrind "
            f"{slow:.0f} s, all {figures.seconds:.0f} s)"
        )
    inline = figures.apps["relu"].inline_max_images
    if inline is not None:
        print(f"  relu-serve runs batches of up to {inline} images inline (native calibration)")
    else:  # calibrated under valgrind instead: ~1000x slower, so no batch runs inline
        print("  warning: relu-serve's inline limit not found; its count may include thread hops")


def target_line(figures: Figures) -> str:
    what = f"instructions per /predict request <= {TARGET:g}x ceiling"
    if figures.ratio is None:
        return f"  n/a   {what}: {figures.skipped or 'not measured in this run'}"
    verdict = "PASS" if figures.ratio <= TARGET else "FAIL"
    return f"  {verdict}  {what}: {figures.ratio:.2f}x"


@dataclass
class Costs:
    """Instructions per (object file, function) from one callgrind file."""

    own: dict[tuple[str, str], int] = field(default_factory=dict)  # the function's own code
    inclusive: dict[tuple[str, str], int] = field(default_factory=dict)  # own + its calls


def parse_callgrind(path: Path) -> Costs:
    """Read a callgrind file (its format: valgrind's docs, "Callgrind Format Specification").

    A cost line after a calls= line is the callee's inclusive cost (the caller's inclusive
    only); every other cost line is the current function's own. Names are compressed: the first
    "(id) name" defines an id that later lines use alone.
    """
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}}
    ob = fn = ""
    costs, called = Costs(), False
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key in ("ob", "cob", "fn", "cfn"):
            name = _expand(names[key[-2:]], value)
            ob, fn = (name, fn) if key == "ob" else (ob, name) if key == "fn" else (ob, fn)
        elif key == "calls":
            called = True
        elif (line[:1].isdigit() or line[:1] in "+-*") and len(fields := line.split()) > 1:
            cost, where = int(fields[1]), (Path(ob).name, fn)
            costs.inclusive[where] = costs.inclusive.get(where, 0) + cost
            if not called:
                costs.own[where] = costs.own.get(where, 0) + cost
            called = False
    return costs


def _expand(table: dict[str, str], value: str) -> str:
    found = re.fullmatch(r"\((\d+)\)(?: (.*))?", value)
    if found is None:
        return value
    if found.group(2) is not None:
        table[found.group(1)] = found.group(2)
    return table.get(found.group(1), value)


def per_request(figures: Figures, app: str) -> Costs:
    """Each function's cost per request: block 2 minus block 1, over their size difference."""
    out, (low, high) = figures.outputs[app], figures.counts
    small = parse_callgrind(out.with_name(f"{out.name}.2"))
    large = parse_callgrind(out.with_name(f"{out.name}.3"))

    def slope(a: dict[tuple[str, str], int], b: dict[tuple[str, str], int]) -> dict[Any, int]:
        return {k: round((v - a.get(k, 0)) / (high - low)) for k, v in b.items()}

    return Costs(slope(small.own, large.own), slope(small.inclusive, large.inclusive))


def by_object(costs: Costs) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (ob, _), cost in costs.own.items():
        totals[ob] = totals.get(ob, 0) + cost
    return totals


def python_calls(figures: Figures, requests: int = 200) -> dict[str, dict[str, float]]:
    """Each app's Python frames entered per request, by function (a native driver run, with
    the callgrind run's inline limit)."""
    calls = {}
    for app in APPS:
        extra = ["--warmup", "100", "--count-calls", str(requests), *pin_args(figures, app)]
        argv = driver_argv(app, figures.model, [1], *extra)
        result = run_driver_process(argv, driver_env(figures.model), f"call count of {APPS[app]}")
        calls[app] = result["calls"]
    return calls


def print_profile(figures: Figures, top: int) -> None:
    """Where the instructions go: by library (own code) for both apps, then relu-serve's
    costliest C functions, and the Python functions it enters per request."""
    relu, ceiling = per_request(figures, "relu"), per_request(figures, "ceiling")
    mine, theirs = by_object(relu), by_object(ceiling)
    print("\ninstructions per request by library (own code): relu-serve, ceiling, difference")
    for ob in sorted(mine.keys() | theirs.keys(), key=lambda k: -mine.get(k, 0))[:top]:
        a, b = mine.get(ob, 0), theirs.get(ob, 0)
        print(f"  {a:11,} {b:11,} {a - b:+11,}  {ob[:60]}")
    print(f"\nrelu-serve: top {top} C functions per request (own code)")
    for (ob, fn), cost in sorted(relu.own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {cost:11,}  {fn[:60]}  [{ob[:40]}]")
    calls = python_calls(figures)
    totals = {app: sum(calls[app].values()) for app in APPS}
    print(
        f"\nPython frames entered per request: relu-serve {totals['relu']:.0f}, ceiling "
        f"{totals['ceiling']:.0f} (driver included); relu-serve's top {top}:"
    )
    for where, count in list(calls["relu"].items())[:top]:
        print(f"  {count:6.1f}  {where[:100]}")


def print_spread(runs: list[Figures]) -> None:
    """How much the figures moved between whole measurements (repeatability)."""
    print(f"\nspread over {len(runs)} runs (max - min, relative to the mean):")
    for app, name in APPS.items():
        for label, values in (
            ("instructions/request", [f.apps[app].instructions for f in runs]),
            ("us/request", [f.apps[app].us_per_request for f in runs]),
        ):
            known = [v for v in values if v]
            if len(known) > 1:
                mean = sum(known) / len(known)
                shown = ", ".join(f"{v:,.1f}" for v in known)
                print(f"  {name:11} {label:21} {shown}: {(max(known) - min(known)) / mean:.2%}")
    ratios = [f.ratio for f in runs if f.ratio]
    if ratios:
        print(f"  ratio: {', '.join(f'{r:.3f}x' for r in ratios)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.instructions", description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="the ONNX model to serve")
    parser.add_argument("--app", choices=APPS, help="driver mode: run this app in-process")
    parser.add_argument(
        "--requests", type=int, nargs="+", default=[N2], help="driver: measured block sizes"
    )
    parser.add_argument("--warmup", type=int, default=WARMUP, help="driver: warm-up requests")
    parser.add_argument("--repeat", type=int, default=1, help="driver: runs per block, best kept")
    parser.add_argument("--mark", action="store_true", help="driver: mark() around each block")
    parser.add_argument("--count-calls", type=int, default=0, help="driver: count Python calls")
    parser.add_argument("--inline-max-images", type=int, help="driver: pin relu-serve's inline")
    parser.add_argument(
        "--request", choices=REQUESTS, default="predict", help="driver: what to send"
    )
    parser.add_argument("--ready-timeout", type=float, default=1200.0, help="driver: seconds")
    parser.add_argument(
        "--metrics", choices=("on", "off"), help="relu-serve's metrics (default on: as served)"
    )
    parser.add_argument("--counts", type=int, nargs=2, default=(N1, N2), metavar=("N1", "N2"))
    parser.add_argument("--jobs", type=int, default=2, help="callgrind runs at a time")
    parser.add_argument("--runs", type=int, default=1, help="whole measurements (spread check)")
    parser.add_argument("--keep", type=Path, help="keep the callgrind files in this folder")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="print per library and top N functions"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.metrics:
        os.environ["BENCH_METRICS"] = args.metrics  # driver_env hands it to every driver
    if args.app:
        return run_driver(args)
    runs = []
    for run in range(args.runs):
        keep = args.keep / f"run{run + 1}" if args.keep and args.runs > 1 else args.keep
        figures = instructions_per_request(
            args.model,
            counts=tuple(args.counts),
            jobs=args.jobs,
            keep=keep,
            profile=args.profile,
            request=args.request,
        )
        print_figures(figures)
        print(target_line(figures), flush=True)
        runs.append(figures)
    if len(runs) > 1:
        print_spread(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
