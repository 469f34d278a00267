"""Counter: fired units of sampled images added to this worker's counts, over a sliding window."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from service.classifier.monitor.store import BINS, DROPPED, IMAGES, Layout, Store

Bool = np.ndarray[Any, np.dtype[np.bool_]]


class Counter:
    """Adds images' fired units (N, all units, bool) to the store's counts of this worker.

    With ``window_images`` > 0 only this worker's last ``window_images`` counted images stay in
    the counts: each is kept bit-packed (3,712 units: 464 bytes) until it is taken out again.
    """

    def __init__(self, store: Store, window_images: int) -> None:
        self.store = store
        self.window_images = window_images
        self._window: deque[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = deque()
        self._held = 0

    def add(self, fired: Bool, dropped: int = 0) -> None:
        """Count ``fired`` (N, units): one row per image, True where a unit's output is > 0."""
        layout = self.store.layout
        if self.window_images and len(fired) > self.window_images:
            fired = fired[-self.window_images :]
        # 0/1 bytes summed into int32: numpy's fast loop (bool summed to int64 is ~10x slower).
        ones = fired.view(np.uint8)
        active = np.add.reduceat(ones, layout.starts, axis=1, dtype=np.int32)
        with self.store.locked():
            counts = self.store.counts
            if self.store.epoch_changed():
                self._window.clear()
                self._held = 0
            if self.window_images:
                self._evict(counts, self._held + len(fired) - self.window_images)
                self._window.append((np.packbits(fired, axis=1), active))
                self._held += len(fired)
            _apply(counts, layout, ones, active, sign=1)
            counts[DROPPED] += dropped

    def _evict(self, counts: np.ndarray[Any, Any], surplus: int) -> None:
        """Take the oldest ``surplus`` images out of the counts."""
        layout = self.store.layout
        units = sum(layout.units)
        while surplus > 0:
            packed, active = self._window[0]
            take = min(surplus, len(packed))
            old = np.unpackbits(packed[:take], axis=1, count=units)
            _apply(counts, layout, old, active[:take], sign=-1)
            if take == len(packed):
                self._window.popleft()
            else:
                self._window[0] = (packed[take:], active[take:])
            self._held -= take
            surplus -= take


def _bins(active: np.ndarray[Any, Any], units: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Histogram bin of each (image, layer) active fraction a/u: bin b holds (b/B, (b+1)/B],
    the first also 0; integer arithmetic, so that a fraction on a bound lands where
    Prometheus's ``le`` buckets put it."""
    bins: np.ndarray[Any, Any] = np.maximum((active * BINS + units - 1) // units - 1, 0)
    return bins


def _apply(
    counts: np.ndarray[Any, Any],
    layout: Layout,
    ones: np.ndarray[Any, np.dtype[np.uint8]],
    active: np.ndarray[Any, Any],
    sign: int,
) -> None:
    """Add (sign 1) or take out (-1) images: their count, active units, bins and fires (a few
    whole-array operations: this runs for every batch of sampled images)."""
    counts[IMAGES] += sign * len(active)
    counts[layout.active] += sign * active.sum(axis=0)
    bins = _bins(active, layout.units_array) + layout.hist_offsets
    counts[layout.hist] += sign * np.bincount(bins.ravel(), minlength=len(layout.units) * BINS)
    counts[layout.fires] += sign * np.add.reduce(ones, axis=0, dtype=np.int32)
