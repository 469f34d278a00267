"""Metrics: the service's Prometheus series, counted in each worker and rendered for them all.

With several uvicorn workers a scrape reaches one of them, so each worker writes its values to
its own files in a shared directory (prometheus_client's multiprocess mode) and /metrics sums
them. prometheus_client chooses its value class once, when it is first imported, from the
PROMETHEUS_MULTIPROC_DIR variable: `python -m service` sets it (``MULTIPROC_ENV``) to a fresh
directory before anything imports this module. Without it (an app built in-process, as the tests
do) the values live in this process and /metrics renders them from the default registry.
"""

from __future__ import annotations

import asyncio
import glob
import math
import os
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector

# The *_created series would appear in-process but never in multiprocess mode: none at all.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: The variable prometheus_client reads at import to write its values to per-process files.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Every series of the service starts so (the README's metric table lists them all).
PREFIX = "relu_serve_"
#: The route label of a request no route matched (404 and the like): one value, not the path.
UNMATCHED = "unmatched"
#: Methods counted by name; any other (a client may send anything) counts as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

#: Request and model-run times: from 50 us (a one-image run) to the 30 s request timeout.
_SECONDS = (
    *(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05),
    *(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf),
)
#: Images per model run: powers of two up to the largest batch (max_images, 1024 by default).
_IMAGES = (*(float(2**i) for i in range(11)), math.inf)

REQUESTS = Counter(
    "relu_serve_requests",
    "Requests answered: HTTP by route template (unmatched: no route), method and status; "
    "gRPC by call path (/inference.GRPCInferenceService/ModelInfer), POST and code name.",
    ["route", "method", "status"],
)
REQUEST_DURATION = Histogram(
    "relu_serve_request_duration_seconds",
    "Time from a request's arrival at the app to the end of its answer, by route template.",
    ["route"],
    buckets=_SECONDS,
)
INFERENCE_IMAGES = Counter(
    "relu_serve_inference_images", "Images run through the model (every model run, summed)."
)
BATCH_IMAGES = Histogram(
    "relu_serve_batch_images",
    "Images per model run (a batch merges concurrent requests).",
    buckets=_IMAGES,
)
INFERENCE_DURATION = Histogram(
    "relu_serve_inference_duration_seconds",
    "Time of one model run (ONNX Runtime, the whole batch).",
    buckets=_SECONDS,
)
QUEUE_IMAGES = Gauge(
    "relu_serve_queue_images",
    "Images waiting for a batch, summed over the live workers.",
    multiprocess_mode="livesum",
)
READY = Gauge(
    "relu_serve_ready",
    "1 when every live worker is ready for traffic (/readyz 200), else 0.",
    multiprocess_mode="livemin",
)
MODEL_INFO = Gauge(
    "relu_serve_model_info",
    "1 for the model served: its name, version and the ONNX Runtime provider it runs on.",
    ["name", "version", "provider"],
    multiprocess_mode="livemax",
)


class _Histogram:
    """One histogram child's observations in this process, and what flush has added to it.
    Tally observes ``value`` in place (a call less per observation): ``buckets[bisect_left(
    bounds, value)] += 1`` (le: the first bound >= value) and ``sum += value``."""

    __slots__ = ("bounds", "buckets", "child", "pushed", "pushed_sum", "sum")

    def __init__(self, child: Histogram, bounds: tuple[float, ...]) -> None:
        self.child, self.bounds = child, bounds
        self.buckets = [0] * len(bounds)
        self.pushed = [0] * len(bounds)
        self.sum = self.pushed_sum = 0.0

    def push(self) -> None:
        # prometheus_client has no public way to add n observations to one bucket; its
        # Histogram keeps one value per bucket and one for the sum (0.26, pinned; the tests
        # check every count against the traffic sent).
        for index, pushed in enumerate(self.pushed):
            now = self.buckets[index]
            if now != pushed:
                self.child._buckets[index].inc(now - pushed)
                self.pushed[index] = now
        now_sum = self.sum
        if now_sum != self.pushed_sum:
            self.child._sum.inc(now_sum - self.pushed_sum)
            self.pushed_sum = now_sum


class _Count:
    """One counter child's count in this process, and what flush has added to it."""

    __slots__ = ("child", "pushed", "value")

    def __init__(self, child: Counter) -> None:
        self.child, self.value, self.pushed = child, 0, 0

    def push(self) -> None:
        now = self.value
        if now != self.pushed:
            self.child.inc(now - self.pushed)
            self.pushed = now


class Tally:
    """The hot paths' counts, kept in this process as plain numbers and added to the
    prometheus_client values by ``flush`` (every FLUSH_S, and before a scrape renders them).

    Measured with callgrind: in multiprocess mode one prometheus_client inc costs ~8,500
    instructions and one histogram observation ~17,500 (a lock, a pid check and an mmap write
    each); counting here costs ~2,400 per observation, and a flush writes each changed value
    once. Another worker's counts reach a scrape within FLUSH_S.
    """

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, int | str], tuple[_Count, _Histogram]] = {}
        self._durations: dict[str, _Histogram] = {}
        self._images = _Count(INFERENCE_IMAGES)
        self._batches = _Histogram(BATCH_IMAGES, _IMAGES)
        self._run_seconds = _Histogram(INFERENCE_DURATION, _SECONDS)
        self._queues: list[Callable[[], int]] = []
        self._runs = threading.Lock()  # model runs are counted in the ONNX Runtime thread too
        self._flushing = threading.Lock()

    def request(self, route: str, method: str, status: int | str, seconds: float) -> None:
        """One answered request (the event loop's thread only); ``status`` an HTTP status or,
        for gRPC, the status code's name."""
        if method not in METHODS:
            method = "other"
        key = (route, method, status)
        cell = self._requests.get(key)
        if cell is None:
            cell = self._request_cell(route, method, status)
        cell[0].value += 1
        duration = cell[1]  # _Histogram.observe inlined (here and in model_run): a call less
        duration.buckets[bisect_left(duration.bounds, seconds)] += 1
        duration.sum += seconds

    def _request_cell(
        self, route: str, method: str, status: int | str
    ) -> tuple[_Count, _Histogram]:
        duration = self._durations.get(route)
        if duration is None:
            duration = self._durations[route] = _Histogram(REQUEST_DURATION.labels(route), _SECONDS)
        cell = (_Count(REQUESTS.labels(route, method, str(status))), duration)
        self._requests[(route, method, status)] = cell
        return cell

    def model_run(self, images: int, seconds: float) -> None:
        batches, run_seconds = self._batches, self._run_seconds
        with self._runs:
            self._images.value += images
            batches.buckets[bisect_left(batches.bounds, images)] += 1
            batches.sum += images
            run_seconds.buckets[bisect_left(run_seconds.bounds, seconds)] += 1
            run_seconds.sum += seconds

    def watch_queue(self, queued: Callable[[], int]) -> Callable[[], None]:
        """Report ``queued()`` (images waiting) at each flush; returns what stops it."""
        self._queues.append(queued)
        return lambda: self._queues.remove(queued)

    def flush(self) -> None:
        with self._flushing:
            for count, _ in list(self._requests.values()):
                count.push()
            for duration in list(self._durations.values()):
                duration.push()
            with self._runs:
                for series in (self._images, self._batches, self._run_seconds):
                    series.push()
            QUEUE_IMAGES.set(sum(queued() for queued in self._queues))


#: This process's tally (the guard and inference count into it).
TALLY = Tally()
#: Seconds between two flushes of a worker's tally (the lag of another worker's counts).
FLUSH_S = 1.0


async def flush_periodically() -> None:
    """Flush TALLY every FLUSH_S until cancelled (a task of each worker's runtime)."""
    while True:
        await asyncio.sleep(FLUSH_S)
        TALLY.flush()


def counted(run: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``run`` (one model run over a batch) counting its images, batch size and duration."""

    def counted_run(batch: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        output = run(batch)
        TALLY.model_run(len(batch), time.perf_counter() - started)
        return output

    return counted_run


def multiprocess() -> bool:
    """Whether values go to per-process files (prometheus_client saw the variable at import)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def render(accept: str, extra: Sequence[Collector] = ()) -> tuple[bytes, str]:
    """The exposition for an ``Accept`` header: OpenMetrics 1.0 when it names
    application/openmetrics-text, else Prometheus text 0.0.4 (what every Prometheus reads); the
    service's series (from every worker's files in multiprocess mode) followed by those of
    ``extra``. Returns the body and its Content-Type. (prometheus_client's own choose_encoder
    raises on a malformed version parameter: a client's header must not cause a 500.)"""
    TALLY.flush()
    exposition = _Exposition(extra)
    ranges = (part.split(";", 1)[0].strip().lower() for part in accept.split(","))
    if "application/openmetrics-text" in ranges:
        return openmetrics.generate_latest(exposition), openmetrics.CONTENT_TYPE_LATEST  # type: ignore[no-untyped-call]
    return generate_latest(exposition), CONTENT_TYPE_PLAIN_0_0_4


class _Exposition:
    """A collector of collectors: what one scrape shows."""

    def __init__(self, extra: Sequence[Collector]) -> None:
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        if multiprocess():
            path = os.environ[MULTIPROC_ENV]
            reap(path)
            yield from MultiProcessCollector(None, path).collect()  # type: ignore[no-untyped-call]
        else:
            yield from (m for m in REGISTRY.collect() if m.name.startswith(PREFIX))
        for collector in self.extra:
            yield from collector.collect()


def retire() -> None:
    """This worker is stopping: its last counts flushed, not ready, and its live gauges out of
    the sums and minima."""
    TALLY.flush()
    READY.set(0)
    if multiprocess():
        mark_process_dead(os.getpid(), os.environ[MULTIPROC_ENV])  # type: ignore[no-untyped-call]


_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def reap(path: str) -> list[int]:
    """Drop the live gauges of workers that died (uvicorn restarts a crashed worker under a new
    pid); counters and histograms of dead workers stay, as counters must not go back."""
    dead: set[int] = set()
    for name in glob.glob(os.path.join(path, "gauge_live*.db")):
        found = _LIVE_FILE.search(name)
        if found and not _alive(int(found.group(1))):
            dead.add(int(found.group(1)))
    for pid in dead:
        mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
