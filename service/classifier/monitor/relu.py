"""ReluMonitor: samples /predict images on the hot path and counts their fired units off it."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.classifier.monitor.counter import Counter
from service.classifier.monitor.probe import Probe
from service.classifier.monitor.store import BINS, DROPPED, IMAGES, Store

log = logging.getLogger("relu_serve")

#: Sampled batches allowed to wait for the counter thread; beyond that images are dropped (and
#: counted as dropped), so that a counter behind the traffic never holds up a request.
MAX_PENDING_BATCHES = 4096
#: How long the counter thread lets sampled batches gather before it runs them together, and
#: the most queued batches it takes into one probe run. Probe run + count per image, measured
#: in-process: 71 us alone, 25 us in a run of 5, 16 us in a run of 45; at 1-in-8 sampling of
#: ~7,000 req/s, 50 ms gathers ~45 images (5 ms: ~5).
COLLECT_S = 0.05
MAX_RUN_BATCHES = 256
#: Bounds of the active-fraction histogram's bins, as Prometheus ``le`` values.
BOUNDS = tuple((b + 1) / BINS for b in range(BINS))


@dataclass(frozen=True)
class LayerFigures:
    """One activation layer's figures over the window, summed over every worker."""

    name: str
    units: int
    images: int
    #: Sum over images of the fraction of the layer's units active (> 0) on the image.
    active_fraction_sum: float
    #: Images per active-fraction bin; bin b holds (b/BINS, (b+1)/BINS], bin 0 also 0.
    histogram: list[int]
    fires: np.ndarray[Any, np.dtype[np.int64]]

    @property
    def dead(self) -> list[int]:
        """Units that never fired in the window (empty before any image was counted)."""
        return np.flatnonzero(self.fires == 0).tolist() if self.images else []


@dataclass(frozen=True)
class Figures:
    images: int
    dropped: int
    #: Images counted per worker file (a worker that exited keeps its file).
    worker_images: list[int]
    layers: list[LayerFigures]


class ReluMonitor:
    """Every ``sample_every``-th image of this worker's /predict traffic has its activation
    pattern counted: per unit how often it fired, per layer the fraction of units active.

    ``observe`` (the request path) only picks rows and queues a reference to them; a daemon
    thread runs them through the probe session and adds them to this worker's counts file.
    """

    def __init__(self, probe: Probe, store: Store, *, sample_every: int, window_images: int):
        self.probe = probe
        self.store = store
        self.sample_every = sample_every
        self.window_images = window_images
        #: How long the counter thread gathers samples before a probe run (COLLECT_S).
        self.collect_s = COLLECT_S
        self._counter = Counter(store, window_images)
        self._queue: queue.SimpleQueue[np.ndarray[Any, Any] | None] = queue.SimpleQueue()
        self._seen = 0
        self._queued = 0
        self._done = 0
        self._dropped = 0
        self._dropped_counted = 0
        self._thread = threading.Thread(target=self._count, name="relu-monitor", daemon=True)
        self._thread.start()

    def observe(self, batch: np.ndarray[Any, Any]) -> None:
        """Queue the sampled images of a normalised batch (N, C, H, W) that was just served."""
        every = self.sample_every
        if every > 1:
            first = -self._seen % every
            self._seen += len(batch)
            if first >= len(batch):
                return
            batch = batch[first::every]
        if self._queued - self._done >= MAX_PENDING_BATCHES:
            self._dropped += len(batch)
            return
        self._queued += 1
        self._queue.put(batch)

    def flush(self, timeout_s: float) -> bool:
        """Wait (bounded) until this worker's queued images are counted; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._done < self._queued:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        self.store.close()

    def figures(self) -> Figures:
        """The counts of every worker summed."""
        total, worker_images = self.store.total()
        layout = self.store.layout
        hist = total[layout.hist].reshape(len(layout.units), BINS)
        fires = total[layout.fires]
        images = int(total[IMAGES])
        layers = [
            LayerFigures(
                name=layer.name,
                units=layer.units,
                images=images,
                active_fraction_sum=float(total[layout.active][i]) / layer.units,
                histogram=hist[i].tolist(),
                fires=fires[layout.layer_slices[i]],
            )
            for i, layer in enumerate(self.probe.layers)
        ]
        return Figures(images, int(total[DROPPED]), worker_images, layers)

    def reset(self) -> None:
        """Zero the counts of every worker (this worker's queue is counted first)."""
        self.flush(timeout_s=5)
        self.store.reset()

    def _count(self) -> None:
        _lowest_priority()
        while True:
            batches = [self._queue.get()]
            if batches[0] is not None:
                # Let a few more arrive: one probe run over many images costs far less per
                # image than one run each (batch 64: ~30 us per image, batch 1: ~90 us).
                time.sleep(self.collect_s)
            while not self._queue.empty() and len(batches) < MAX_RUN_BATCHES:
                batches.append(self._queue.get())
            real = [b for b in batches if b is not None]
            try:
                if real:
                    self._add(real)
            except Exception:  # the monitor must never take the server down; say so and go on
                log.exception("relu monitor: counting a batch failed")
            self._done += len(real)
            if len(real) < len(batches):
                return

    def _add(self, batches: list[np.ndarray[Any, Any]]) -> None:
        batch = batches[0] if len(batches) == 1 else np.concatenate(batches)
        acts = self.probe.run(batch)
        fired = np.concatenate([acts[layer.name] > 0 for layer in self.probe.layers], axis=1)
        # _dropped only grows (on the event loop); this thread adds what is new since last time.
        dropped = self._dropped
        self._counter.add(fired, dropped - self._dropped_counted)
        self._dropped_counted = dropped


def _lowest_priority() -> None:
    """Give the calling thread (Linux: a thread has its own nice value) the lowest CPU priority:
    the counting then uses the time the request path leaves idle, and under full load falls
    behind (its queue bounded, drops counted) instead of slowing requests down."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        log.info("relu monitor: could not lower the counter thread's priority")
