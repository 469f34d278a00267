"""Store: one counts file per worker in a shared directory, summed when read, reset for all."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Histogram bins of the active fraction per image: (0, 1/B], (1/B, 2/B], ... (0 in the first).
BINS = 20
#: Header slots of a counts file: images counted, images dropped (the counter was behind).
IMAGES, DROPPED, _HEADER = 0, 1, 2
_WORKER_GLOB = "worker-*.i64"
_EPOCH = "epoch.i64"
_LOCK = "lock"

Int64 = np.ndarray[Any, np.dtype[np.int64]]


def prepare(directory: Path) -> Path:
    """Make ``directory`` fresh for a new server: created if missing, old counts removed."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob(_WORKER_GLOB):
        old.unlink()
    (directory / _EPOCH).unlink(missing_ok=True)
    return directory


class Layout:
    """Where each figure sits in a counts file (flat int64): header, per layer the sum of active
    units over images and the histogram of active fractions, then one fire count per unit."""

    def __init__(self, units: Sequence[int]) -> None:
        self.units = tuple(units)
        layers = len(units)
        self.active = slice(_HEADER, _HEADER + layers)
        self.hist = slice(self.active.stop, self.active.stop + layers * BINS)
        self.fires = slice(self.hist.stop, self.hist.stop + sum(units))
        self.size = self.fires.stop
        bounds = np.cumsum([0, *units])
        self.layer_slices = tuple(slice(int(a), int(b)) for a, b in itertools.pairwise(bounds))
        #: Where each layer starts among the units (np.add.reduceat), units per layer, and the
        #: first histogram slot of each layer.
        self.starts = bounds[:-1]
        self.units_array = np.array(units)
        self.hist_offsets = np.arange(layers) * BINS


class Store:
    """This worker's counts file, the others' read back, and the lock that orders them.

    Every write and every read holds an ``flock`` on the directory's lock file, so a reader sees
    whole updates and a reset from any worker clears every file (a dead worker's too) at once.
    A reset also bumps the epoch file: a writer that sees a new epoch drops its own window state.
    """

    def __init__(self, directory: Path, layout: Layout, worker: str | None = None) -> None:
        self.directory = directory
        self.layout = layout
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        with self.locked():
            self._epoch_map = _open(directory / _EPOCH, 1)
            name = f"worker-{worker or os.getpid()}.i64"
            # A plain ndarray view: np.memmap's own indexing costs microseconds per access.
            self.counts = _open(directory / name, layout.size).view(np.ndarray)
        self.epoch = int(self._epoch_map[0])

    @contextlib.contextmanager
    def locked(self, shared: bool = False) -> Iterator[None]:
        fcntl.flock(self._lock_fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def epoch_changed(self) -> bool:
        """True once after another worker reset the counts (call with the lock held)."""
        epoch = int(self._epoch_map[0])
        changed, self.epoch = epoch != self.epoch, epoch
        return changed

    def total(self) -> tuple[Int64, list[int]]:
        """Every worker's counts summed, and the images each worker's file holds."""
        total = np.zeros(self.layout.size, dtype=np.int64)
        images = []
        with self.locked(shared=True):
            for path in sorted(self.directory.glob(_WORKER_GLOB)):
                counts = np.fromfile(path, dtype=np.int64)
                if len(counts) == len(total):
                    total += counts
                    images.append(int(counts[IMAGES]))
        return total, images

    def reset(self) -> None:
        """Zero every worker's counts and start a new epoch."""
        with self.locked():
            for path in self.directory.glob(_WORKER_GLOB):
                counts = np.memmap(path, dtype=np.int64, mode="r+")
                counts[:] = 0
                counts.flush()
                del counts
            self._epoch_map[0] += 1

    def close(self) -> None:
        os.close(self._lock_fd)


def _open(path: Path, size: int) -> Int64:
    """A memory-mapped int64 file of ``size`` entries, created zeroed if missing."""
    if not path.exists() or path.stat().st_size != size * 8:
        with path.open("wb") as file:
            file.truncate(size * 8)
    counts: Int64 = np.memmap(path, dtype=np.int64, mode="r+", shape=(size,))
    return counts
