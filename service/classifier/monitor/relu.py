"""ReluMonitor: samples /predict images on the hot path and counts their fired units off it."""

from __future__ import annotations

import logging
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
    workers: int
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
        total, workers = self.store.total()
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
        return Figures(images, int(total[DROPPED]), workers, layers)

    def reset(self) -> None:
        """Zero the counts of every worker (this worker's queue is counted first)."""
        self.flush(timeout_s=5)
        self.store.reset()

    def _count(self) -> None:
        while True:
            batches = [self._queue.get()]
            while not self._queue.empty() and len(batches) < 64:
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
