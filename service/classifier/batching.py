"""A generic micro-batcher: concurrent submissions merged into one run call; knows neither ORT nor HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from service.errors import DeadlineExceeded, Overloaded

RunFn = Callable[[np.ndarray], np.ndarray]
#: One lone request in this many goes through the queue to find out whether others join it.
PROBE = 32


@dataclass(eq=False)
class _Entry:
    items: np.ndarray
    future: asyncio.Future[np.ndarray]
    enqueued: float
    timeout_s: float | None


@dataclass
class BatchStats:
    """What the batcher has done so far: batch sizes and queue delays are observable."""

    batches: int = 0
    images: int = 0
    requests: int = 0
    last_batch_images: int = 0
    last_queue_delay_ms: float = 0.0
    max_batch_images: int = 0


class MicroBatcher:
    """Merge concurrent ``submit`` calls into batches of at most ``max_batch_size`` images.

    Each submission is an array whose first axis counts items (images). A worker task takes what
    is waiting, up to ``max_batch_size`` items (a larger submission runs alone), and calls ``run``
    once on the concatenation, then hands every caller its slice of the result, or the exception.
    A batch of at most ``inline_max_items`` items runs inline on the event loop (for work shorter
    than a thread hop, the hop would cost more than it saves); larger ones run in ``executor``,
    so that the loop keeps reading requests meanwhile (all of them inline when it is None).

    The worker waits up to ``max_batch_delay_ms`` for more work only when that pays: when the
    previous batch merged more requests than are waiting now (clients of a busy server come
    back). An idle server runs a lone request at once, with no added latency.

    Memory is bounded: at most ``max_queued`` items wait; beyond that ``submit`` raises
    Overloaded at once. A caller whose ``timeout_s`` passes gets DeadlineExceeded, and its items
    are dropped from the queue if they have not run yet.
    """

    def __init__(
        self,
        run: RunFn,
        *,
        max_batch_size: int,
        max_batch_delay_ms: float,
        max_queued: int,
        executor: Executor | None = None,
        inline_max_items: int = 0,
    ) -> None:
        if max_batch_size < 1 or max_queued < 1 or max_batch_delay_ms < 0:
            raise ValueError("max_batch_size and max_queued must be >= 1, max_batch_delay_ms >= 0")
        self._run = run
        self.max_batch_size = max_batch_size
        self._delay_s = max_batch_delay_ms / 1000
        self.max_queued = max_queued
        self._executor = executor
        #: Batches of at most this many items run inline (adjustable once the run is timed).
        self.inline_max_items = inline_max_items
        self._queue: deque[_Entry] = deque()
        self._queued = 0
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._expected_requests = 1
        #: True while the worker holds a batch (gathering, running): new work must queue.
        self._busy = False
        #: run_now calls that found a lone client (every PROBE-th of them is queued instead).
        self._solo = 0
        self.stats = BatchStats()

    @property
    def queued(self) -> int:
        """Items waiting to run."""
        return self._queued

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name="micro-batcher"
            )

    async def stop(self) -> None:
        """Stop the worker; callers still queued get Overloaded (the server is going away)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while self._queue:
            entry = self._queue.popleft()
            if not entry.future.done():
                entry.future.set_exception(Overloaded("the server is shutting down; retry"))
        self._queued = 0

    def run_now(self, items: np.ndarray) -> np.ndarray | None:
        """Run ``items`` at once and return the output when no batch is to be had; else None
        (``submit`` then queues them).

        That is when the batcher is idle, the items fit ``inline_max_items`` and the last batch
        was one request alone: a lone client (one connection, or a quiet server) then skips the
        queue, a future and a task switch. Every PROBE-th such request is queued all the same:
        while it waits, the requests of other clients that are being read join it, and from
        then on ``_expected_requests`` keeps the batcher batching until load falls again.
        (Measured on the digits model: inline-only ran 0.6x the ceiling's req/s at 64
        connections, batching 0.9-1.1x; the probes cost a lone client ~1/PROBE of a queue
        round trip.)
        """
        count = len(items)
        if self._busy or self._queue or count > self.inline_max_items:
            return None
        if self._expected_requests > 1:
            return None
        self._solo += 1
        if self._solo % PROBE == 0:
            return None
        output = self._run(items)
        self._record(count, 1, 0.0)
        return output

    async def submit(self, items: np.ndarray, timeout_s: float | None = None) -> np.ndarray:
        """Queue ``items`` for the next batch and return ``run``'s output rows for them."""
        count = len(items)
        if self._queued + count > self.max_queued:
            raise Overloaded(
                f"the queue is full ({self._queued} images waiting, limit {self.max_queued}); retry shortly"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._queue.append(_Entry(items, future, time.perf_counter(), timeout_s))
        self._queued += count
        self._wakeup.set()
        # A timer handle rather than asyncio.wait_for: same effect, a fraction of the cost on a
        # path that runs thousands of times a second.
        timer = loop.call_later(timeout_s, _expire, future, timeout_s) if timeout_s else None
        try:
            return await future
        finally:
            if timer is not None:
                timer.cancel()

    def _take(self, entries: list[_Entry], images: int) -> int:
        """Move waiting entries into ``entries`` while they fit; return the image count."""
        now = time.perf_counter()
        while self._queue:
            head = self._queue[0]
            if head.timeout_s is not None and now - head.enqueued > head.timeout_s:
                _expire(head.future, head.timeout_s)  # its timer may not have had its turn yet
            if head.future.done():  # timed out (or its caller went away) while waiting
                self._queue.popleft()
                self._queued -= len(head.items)
                continue
            size = len(head.items)
            if entries and images + size > self.max_batch_size:
                break
            self._queue.popleft()
            self._queued -= size
            entries.append(head)
            images += size
        return images

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            entries: list[_Entry] = []
            images = self._take(entries, 0)
            if not entries:
                continue
            self._busy = True
            if (
                self._delay_s
                and len(entries) < self._expected_requests
                and images < self.max_batch_size
            ):
                images = await self._gather_more(entries, images)
            started = time.perf_counter()
            try:
                await self._run_batch(loop, entries, images)
            finally:
                self._busy = False
            self._expected_requests = len(entries)
            self._record(images, len(entries), started - entries[0].enqueued)
            if self._queue and self._inline(images):
                # A batch run inline never yielded: let its callers answer (and the loop read
                # new requests) before the next one, else answers wait for the whole queue.
                await asyncio.sleep(0)

    async def _run_batch(
        self, loop: asyncio.AbstractEventLoop, entries: list[_Entry], images: int
    ) -> None:
        """One run over the entries' items; each caller gets its rows, or the error."""
        batch = (
            entries[0].items if len(entries) == 1 else np.concatenate([e.items for e in entries])
        )
        try:
            if self._inline(images):
                output = self._run(batch)
            else:
                output = await loop.run_in_executor(self._executor, self._run, batch)
        except Exception as exc:  # every caller of the batch gets the error
            for entry in entries:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            return
        offset = 0
        for entry in entries:
            size = len(entry.items)
            if not entry.future.done():
                entry.future.set_result(output[offset : offset + size])
            offset += size

    def _inline(self, images: int) -> bool:
        """Whether a batch of ``images`` runs on the event loop rather than in the executor."""
        return self._executor is None or images <= self.inline_max_items

    async def _gather_more(self, entries: list[_Entry], images: int) -> int:
        deadline = time.perf_counter() + self._delay_s
        while len(entries) < self._expected_requests and images < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
            images = self._take(entries, images)
            if self._queue:  # the next entry does not fit: the batch is full
                break
        return images

    def _record(self, images: int, requests: int, delay_s: float) -> None:
        stats = self.stats
        stats.batches += 1
        stats.images += images
        stats.requests += requests
        stats.last_batch_images = images
        stats.last_queue_delay_ms = delay_s * 1000
        if images > stats.max_batch_images:
            stats.max_batch_images = images


def _expire(future: asyncio.Future[np.ndarray], timeout_s: float) -> None:
    if not future.done():
        future.set_exception(
            DeadlineExceeded(
                f"the request waited more than {timeout_s * 1000:g} ms (request_timeout_ms) and was dropped"
            )
        )
