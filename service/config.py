"""Settings: every knob of the service, read once at start-up from RELU_SERVE_* variables."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Provider = Literal["cuda", "cpu"]


def _default_providers() -> list[Provider]:
    return ["cuda", "cpu"]


class Settings(BaseSettings):
    """Service configuration. Each field is set by the environment variable RELU_SERVE_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="RELU_SERVE_", extra="forbid", frozen=True)

    model_path: Path = Path("models/relu_cnn.onnx")
    """The ONNX model written by `relu-export` (it must carry relu-serve metadata)."""

    host: str = "127.0.0.1"
    """Interface to listen on; use 0.0.0.0 inside a container."""

    port: int = Field(8000, ge=1, le=65535)
    """TCP port to listen on."""

    grpc_port: int = Field(8001, ge=0, le=65535)
    """TCP port of the KServe v2 gRPC endpoint (inference.GRPCInferenceService) on the same
    host; 0 turns it off. Every worker serves it (SO_REUSEPORT)."""

    root_path: str = Field("", pattern=r"^(/[^/\s]+)*$")
    """The path prefix a reverse proxy strips before forwarding (uvicorn's --root-path), e.g.
    `/api`: routes still match, and the docs page and OpenAPI `servers` name the prefix."""

    workers: int = Field(1, ge=1, le=64)
    """uvicorn worker processes; each loads its own ONNX Runtime session."""

    providers: Annotated[list[Provider], NoDecode] = Field(
        default_factory=_default_providers, min_length=1
    )
    """Execution providers in order of preference, comma-separated (`cuda,cpu`). Providers this
    ONNX Runtime build lacks are skipped; the active ones are reported at GET /model."""

    strict_providers: bool = False
    """Refuse to start when the first requested provider is not the one actually active."""

    intra_op_threads: int | None = Field(None, ge=1, le=256)
    """ONNX Runtime intra-op threads per worker; default: usable CPUs (affinity and cgroup quota)
    divided by workers, at least 1."""

    graph_optimization_level: Literal["disabled", "basic", "extended", "all"] = "all"
    """ONNX Runtime graph optimisation level."""

    max_body_bytes: int = Field(128 * 1024 * 1024, ge=1024)
    """Largest request body accepted; larger bodies get 413 before they are read whole."""

    max_json_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    """Largest JSON body accepted (413 beyond). Parsing JSON holds the interpreter for ~5 ms
    per MiB and builds a Python object per number, so big arrays belong in .npy bodies."""

    max_inflight_bytes: int = Field(160 * 1024 * 1024, ge=1024)
    """Request bytes all requests of a worker may hold at once (bodies over 64 KiB count); a body
    that would pass it gets 503 with Retry-After, so that many big bodies cannot add up past
    the memory limit."""

    max_images: int = Field(1024, ge=1)
    """Most images one /predict request may carry."""

    max_image_pixels: int = Field(4096 * 4096, ge=64)
    """Largest uploaded image (width x height) decoded; larger ones are refused unread."""

    max_request_pixels: int = Field(4096 * 4096, ge=64)
    """Pixels the images of one request may declare in all, checked before any is decoded."""

    max_elements: int = Field(16_777_216, ge=1)
    """Most array elements one /activate request may carry."""

    batching: bool = True
    """Merge concurrent /predict requests into one ONNX Runtime run (dynamic batching). It pays
    when per-batch compute dominates (wide models, big inputs); an idle server adds no latency."""

    max_batch_size: int = Field(256, ge=1, le=4096)
    """Most images one batched run carries; a larger single request runs alone. 256 merges four
    64-image requests into one run (digits model, one core, 16 connections: 1,139 against 992
    req/s at 64, p50 13.2 against 15.0 ms)."""

    max_batch_delay_ms: float = Field(2.0, ge=0, le=1000)
    """Longest a batch waits for more requests, only when the last batch merged several."""

    max_queue_images: int = Field(4096, ge=1)
    """Images allowed to wait for a batch; beyond that requests are refused at once."""

    overload_status: Literal[503, 429] = 503
    """Status of a request refused because the queue is full (both send Retry-After)."""

    request_timeout_ms: float = Field(30_000, gt=0)
    """Longest a /predict request may wait in the queue and run before it gets 504."""

    geometry_max_breakpoints: int = Field(20_000, ge=1)
    """Most activation-pattern boundaries one POST /regions walk may cross; beyond it the
    request gets 422 (two test digits are ~1,300-2,000 apart)."""

    geometry_timeout_ms: float = Field(10_000, gt=0)
    """Longest one POST /regions walk may run (checked between its passes) before it gets 504."""

    graceful_shutdown_s: int = Field(20, ge=1, le=3600)
    """After SIGTERM (and the drain below), how long requests in flight may take to finish
    before their connections are cut (uvicorn's timeout_graceful_shutdown). Keep drain + this
    below the orchestrator's grace period (compose stop_grace_period, k8s
    terminationGracePeriodSeconds)."""

    shutdown_drain_s: float = Field(0.0, ge=0, le=300)
    """After SIGTERM, /readyz answers 503 at once but the listener stays open this long, so a
    load balancer stops routing here before connections are refused; 0 for a plain run, a few
    seconds behind Kubernetes Services."""

    max_header_bytes: int = Field(64 * 1024, ge=1024)
    """Largest request line plus headers; a request still sending headers past it gets 431."""

    header_timeout_s: float = Field(10.0, gt=0)
    """Time a client has to send a request's line and headers once it starts (or connects);
    a slower one gets 408 and its connection is closed (slowloris)."""

    body_timeout_s: float = Field(30.0, gt=0)
    """Longest pause between two pieces of a request body; past it the request gets 408 and
    its connection is closed (a declared body never sent holds nothing)."""

    keep_alive_s: float = Field(5.0, gt=0)
    """Idle time after which a keep-alive connection is closed."""

    max_connections: int = Field(2048, ge=1)
    """Open connections (and requests in progress) per worker; beyond it requests get 503."""

    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """API keys, comma-separated: when set, every route but /healthz, /readyz, /v2/health/* and
    the docs needs one as `Authorization: Bearer <key>` or `X-API-Key: <key>` (401 otherwise);
    over gRPC, every method but ServerLive/ServerReady, in the metadata (UNAUTHENTICATED)."""

    api_keys_file: Path | None = None
    """A file of API keys, one per line (# comments), added to api_keys: a mounted secret."""

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins allowed to call the API from a browser, comma-separated (`*` for any); empty:
    no CORS headers, so browsers refuse cross-origin calls."""

    monitor: bool = True
    """Count which ReLU units fire on sampled /predict images (GET /monitor/relu and the
    relu_serve_relu_* metrics); the counting runs in a background thread, off the request path."""

    monitor_sample_every: int = Field(8, ge=1)
    """The ReLU monitor counts every k-th image of each worker's /predict traffic (1: all)."""

    monitor_window_images: int = Field(0, ge=0)
    """Count only the last N sampled images of each worker (0: every image since start or the
    last POST /monitor/relu/reset)."""

    monitor_dir: Path | None = None
    """Directory of the monitor's per-worker counts files, summed when read; `python -m
    service` empties it at start. Default: a fresh temporary directory per server."""

    access_log: bool = False
    """Log one line per request (uvicorn's access log). Off by default: at ~10k requests/s the
    logging costs more than the model; put request logs on the proxy in front instead."""

    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    """Log level of the service and uvicorn."""

    log_format: Literal["text", "json"] = "text"
    """Log lines as text, or as one JSON object per line (for a log collector): every line
    carries the request id; access lines also the route, method, status, duration and images."""

    metrics: bool = True
    """Count requests and model runs and serve them at GET /metrics (Prometheus text or
    OpenMetrics), summed over the workers."""

    metrics_public: bool = False
    """Serve GET /metrics without an API key even when keys are set (a scraper on a private
    network); off: Prometheus sends a key (`authorization` in its scrape config)."""

    metrics_dir: Path | None = None
    """The directory where each worker writes its metric values (prometheus_client's
    multiprocess mode), emptied of them at start; default: a new temporary directory per run,
    removed at exit. On a read-only root filesystem it must be writable (a tmpfs)."""

    numba_cache_seed: Path | None = None
    """A directory of numba's cache files for the activation kernels, made when the image was
    built (the Docker image sets /opt/numba-cache); copied into numba's NUMBA_CACHE_DIR before
    the kernels load, so that start-up reads them instead of compiling them. NUMBA_CACHE_DIR
    must be writable (the image sets /tmp/numba-cache: its root filesystem is read-only)."""

    @field_validator("overload_status", mode="before")
    @classmethod
    def _status_from_text(cls, value: object) -> object:
        # Environment values are text, and a Literal of ints accepts no "503".
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value

    @field_validator("providers", mode="before")
    @classmethod
    def _split_providers(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip().lower() for p in value.split(",") if p.strip()]
        return value

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _long_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(key.get_secret_value()) < 16 for key in value):
            raise ValueError("every API key must have at least 16 characters")
        return value

    def read_api_keys(self) -> list[str]:
        """Every API key: api_keys and the lines of api_keys_file (blank and # lines skipped)."""
        keys = [key.get_secret_value() for key in self.api_keys]
        if self.api_keys_file is not None:
            for line in self.api_keys_file.read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    keys.append(line.strip())
        return keys

    @field_validator("providers")
    @classmethod
    def _unique_providers(cls, value: list[Provider]) -> list[Provider]:
        if len(set(value)) != len(value):
            raise ValueError(f"providers must not repeat, got {','.join(value)}")
        return value

    @property
    def cpus_per_worker(self) -> int:
        """The CPUs each worker has to itself: usable CPUs divided by workers, at least 1."""
        return max(1, usable_cpus() // self.workers)

    @property
    def threads_per_worker(self) -> int:
        """The intra-op thread count each worker's session uses."""
        if self.intra_op_threads is not None:
            return self.intra_op_threads
        return self.cpus_per_worker


def usable_cpus() -> int:
    """CPUs this process may really use: its affinity mask, capped by a cgroup v2/v1 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def _cgroup_quota() -> float | None:
    v2 = Path("/sys/fs/cgroup/cpu.max")
    try:
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1_quota = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        v1_period = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
        if v1_quota.exists() and v1_period.exists():
            quota_us = int(v1_quota.read_text())
            return None if quota_us <= 0 else quota_us / int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return None
