"""Bench helpers: free ports, pinned servers started and stopped, wrk runs parsed, RSS, timing."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WRK_DIR = Path(__file__).resolve().parent / "wrk"
PYTHON = sys.executable

#: Server on core 0, load generator on core 1: they never compete for the same core.
SERVER_CPU, LOAD_CPU = 0, 1

#: glibc otherwise returns multi-MB numpy temporaries to the OS after each request and page-faults
#: them back in on the next (see ACTIVATIONS.md); every server gets the same setting.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "268435456"}

INSTALL_HINT = "apt-get update && apt-get install -y wrk   (Debian/Ubuntu; as root)"
VALGRIND_HINT = "apt-get update && apt-get install -y valgrind   (Debian/Ubuntu; as root)"


def bench_session(path: str) -> Any:
    """An ONNX Runtime session made as relu-serve makes its own (service/session.py: 1 intra-op
    thread, no spinning), for the comparison servers: the comparison is about the request path."""
    from service.session import open_session

    return open_session(path, intra_op_threads=1)


def missing_tools() -> list[str]:
    """Lines naming each tool the bench needs but cannot find, with how to install it."""
    problems = []
    if shutil.which("wrk") is None:
        problems.append(f"wrk is not installed; install it with: {INSTALL_HINT}")
    if shutil.which("taskset") is None:
        problems.append("taskset is not installed; install it with: apt-get install -y util-linux")
    if hasattr(os, "sched_getaffinity") and not {SERVER_CPU, LOAD_CPU} <= os.sched_getaffinity(0):
        problems.append(f"cores {SERVER_CPU} and {LOAD_CPU} must both be usable (taskset)")
    return problems


def missing_optional_tools() -> list[str]:
    """Lines naming each tool some figures need, with how to install it; the bench skips
    those figures (and says so) rather than stopping."""
    problems = []
    if shutil.which("valgrind") is None:
        problems.append(
            f"valgrind is not installed (instructions per request are skipped); "
            f"install it with: {VALGRIND_HINT}"
        )
    return problems


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def relu_env(port: int, **settings: str) -> dict[str, str]:
    """relu-serve's environment in every bench: loopback, one worker, one ONNX Runtime thread,
    CPU, warnings only (no access log), no gRPC port unless ``grpc_port`` is given; more
    RELU_SERVE_* settings as keywords (``model_path="..."``)."""
    env = {
        "RELU_SERVE_HOST": "127.0.0.1",
        "RELU_SERVE_PORT": str(port),
        "RELU_SERVE_WORKERS": "1",
        "RELU_SERVE_INTRA_OP_THREADS": "1",
        "RELU_SERVE_PROVIDERS": "cpu",
        "RELU_SERVE_LOG_LEVEL": "warning",
        "RELU_SERVE_GRPC_PORT": "0",
    }
    env.update({f"RELU_SERVE_{name.upper()}": value for name, value in settings.items()})
    return env


def pinned(cpu: int, argv: Sequence[str]) -> list[str]:
    """``argv`` run on one core; taskset execs it, so the pid is the command's own."""
    return ["taskset", "-c", str(cpu), *argv]


def http_get(port: int, path: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@contextmanager
def serve(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    port: int,
    ready_path: str,
    log_dir: Path,
    ready_timeout_s: float = 180.0,
) -> Iterator[Server]:
    """Start ``argv`` on the server core, wait until GET ``ready_path`` answers 200, stop it after.

    Raises RuntimeError (with the end of the server's log) when it exits or is not ready in time.
    """
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(SERVER_CPU, argv),
            cwd=ROOT,
            env={**os.environ, **MALLOC_ENV, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, port, process, log)
    try:
        _wait_ready(server, ready_path, ready_timeout_s)
        yield server
    finally:
        stop(process)


def _wait_ready(server: Server, path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with status {server.process.returncode}:\n"
                f"{server.log_tail()}"
            )
        try:
            status, body = http_get(server.port, path)
            if status == 200:
                return
            last = f"{status} {body[:200]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(
        f"{server.name} not ready after {timeout_s:.0f} s (GET {path}: {last}):\n"
        f"{server.log_tail()}"
    )


def stop(process: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rss_mb(pid: int) -> float:
    """Resident set size of one process in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    status_errors: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors

    @property
    def ok_per_s(self) -> float:
        """Successful responses per second (wrk's own figure counts failed ones too)."""
        return max(0, self.requests - self.status_errors) / self.duration_s


def run_wrk(
    script: str,
    url: str,
    *,
    connections: int,
    duration_s: float,
    body_dir: Path,
    body: str | None = None,
    check: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[WrkResult, str | None]:
    """One wrk run on the load core; returns its result and the first failed response, if any
    (only looked for with ``check``, which makes wrk slower). ``extra_env``: for the script."""
    env = {**os.environ, **(extra_env or {}), "BENCH_BODY_DIR": str(body_dir)}
    if body is not None:
        env["BENCH_BODY"] = body
    if check:
        env["BENCH_CHECK"] = "1"
    argv = pinned(
        LOAD_CPU,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            "--timeout",
            "30s",
            "-s",
            str(WRK_DIR / script),
            url,
        ],
    )
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    result = parse_wrk(done.stdout)
    if result is None:
        raise RuntimeError(
            f"wrk gave no result (status {done.returncode}): {done.stderr.strip()[-500:]}"
        )
    failure = next(
        (line[len("BENCH_FAIL ") :] for line in done.stderr.splitlines() if "BENCH_FAIL" in line),
        None,
    )
    return result, failure


def parse_wrk(stdout: str) -> WrkResult | None:
    """The BENCH_RESULT line printed by bench/wrk/common.lua's done()."""
    for line in stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            data = json.loads(line[len("BENCH_RESULT ") :])
            socket_errors = sum(int(data[k]) for k in ("connect", "read", "write", "timeout"))
            return WrkResult(
                requests=int(data["requests"]),
                duration_s=max(float(data["duration_us"]) / 1e6, 1e-9),
                p50_ms=float(data["p50_us"]) / 1e3,
                p99_ms=float(data["p99_us"]) / 1e3,
                status_errors=int(data["status"]),
                socket_errors=socket_errors,
            )
    return None


@contextmanager
def on_core(cpu: int) -> Iterator[None]:
    """Run this process on one core for a while (in-process figures on the server's core)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def seconds_per_call(call: Callable[[], object], *, block_s: float = 0.2, blocks: int = 5) -> float:
    """Best mean time of ``call`` over a few blocks of ``block_s`` (the least disturbed one)."""
    call()
    best = float("inf")
    for _ in range(blocks):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < block_s:
            call()
            count += 1
        best = min(best, elapsed / count)
    return best
