"""How /predict reaches the model: through the micro-batcher, or straight to the session."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from service import metrics
from service.classifier.batching import MicroBatcher
from service.classifier.model import Classifier
from service.config import Settings

#: A batch runs inline on the event loop when ONNX Runtime needs at most this long for it. A hop
#: to the ORT thread and back costs 35-70 us here (measured: 641 -> 537 us for a 64-image request
#: of the digits model run inline); a stall this short holds up no other request noticeably,
#: while longer runs are better done off the loop, which meanwhile reads the next requests.
INLINE_BUDGET_S = 0.0005
#: The budget of a worker with one CPU to itself (affinity, cgroup quota, or CPUs / workers):
#: there the ORT thread cannot run beside the loop, so the hop buys no overlap, only its cost
#: (digits model, one core, 16 connections: 64-image requests 929 -> 1017 req/s inline). The
#: bound keeps the loop's stall short for a model slower than this one.
ONE_CPU_INLINE_BUDGET_S = 0.002
#: The inline limit before calibrate() has timed the model.
DEFAULT_INLINE_MAX_IMAGES = 8


class Inference:
    """Runs normalised batches through the classifier the way the settings ask.

    With ``batching`` on, concurrent requests are merged by a MicroBatcher (bounded queue,
    per-request deadline, Overloaded when full); with it off, each request runs on its own.
    Either way one ONNX Runtime thread pool serves the process: ``threads_per_worker`` threads
    inside the session, one Python thread to call it off the event loop. With ``metrics`` on,
    every model run (inline, batched or in the thread) counts its images and time.
    """

    def __init__(self, classifier: Classifier, settings: Settings) -> None:
        self.classifier = classifier
        #: One model run over a batch: the session's, counted when metrics are on.
        self._run = metrics.counted(classifier.predict) if settings.metrics else classifier.predict
        self._metrics = settings.metrics
        self._unwatch: Callable[[], None] = lambda: None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="onnxruntime")
        self._timeout_s = settings.request_timeout_ms / 1000
        self._max_batch_size = settings.max_batch_size
        self._one_cpu = settings.cpus_per_worker == 1
        self.inline_max_images = DEFAULT_INLINE_MAX_IMAGES
        self.batcher: MicroBatcher | None = None
        #: The logits at once when the batch may run inline now (small, and with batching on
        #: the batcher idle), else None: then ``await logits(batch)``. The batcher's own
        #: method when there is one: a call less per request.
        self.run_now: Callable[[np.ndarray], np.ndarray | None] = self._run_small
        if settings.batching:
            self.batcher = MicroBatcher(
                self._run,
                max_batch_size=settings.max_batch_size,
                max_batch_delay_ms=settings.max_batch_delay_ms,
                max_queued=settings.max_queue_images,
                executor=self._executor,
                inline_max_items=self.inline_max_images,
            )
            self.run_now = self.batcher.run_now

    def calibrate(self) -> int:
        """Time the model at 1, 8, 64, ... images (up to max_batch_size, best of 3) and run
        inline every batch that fits the budget (ONE_CPU_INLINE_BUDGET_S on a worker with one
        CPU, else INLINE_BUDGET_S); return that many images (0: none)."""
        channels, height, width = self.classifier.metadata.input_shape
        budget_s = ONE_CPU_INLINE_BUDGET_S if self._one_cpu else INLINE_BUDGET_S
        inline, size = 0, 1
        while size <= self._max_batch_size:
            batch = np.zeros((size, channels, height, width), dtype=np.float32)
            best = min(_timed(self.classifier.predict, batch) for _ in range(3))
            if best > budget_s:
                break
            inline, size = size, size * 8
        self.inline_max_images = inline
        if self.batcher is not None:
            self.batcher.inline_max_items = inline
        return inline

    def start(self) -> None:
        if self.batcher is not None:
            self.batcher.start()
            if self._metrics:
                batcher = self.batcher
                self._unwatch = metrics.TALLY.watch_queue(lambda: batcher.queued)

    async def stop(self) -> None:
        self._unwatch()
        if self.batcher is not None:
            await self.batcher.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run_small(self, batch: np.ndarray) -> np.ndarray | None:
        """run_now without a batcher: a small batch runs at once."""
        if len(batch) <= self.inline_max_images:
            return self._run(batch)
        return None

    async def logits(self, batch: np.ndarray) -> np.ndarray:
        """Logits (N, classes) for a normalised float32 batch (N, C, H, W)."""
        if self.batcher is not None:
            return await self.batcher.submit(batch, self._timeout_s)
        if len(batch) <= self.inline_max_images:
            return self._run(batch)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, batch)


def _timed(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> float:
    started = time.perf_counter()
    run(batch)
    return time.perf_counter() - started
