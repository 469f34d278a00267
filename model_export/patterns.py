"""The OOD reference: training images' act2 activation patterns, bit-packed beside the model."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model_export.data import Splits
from model_export.train import normalise
from service.metadata import PatternsRef

#: The layer whose on/off pattern is compared. act2 (the second conv block, 1,024 units on 8x8
#: digits) told the digits validation split from generated non-digits best: AUROC 0.996 against
#: act1 0.994, act3 0.985, act_fc 0.953 on the images of `bench.ood --dev` (README: OOD).
LAYER = "act2"
#: The most bytes the .npy file may take (the issue's budget): rows beyond it are chosen.
MAX_BYTES = 28 * 1024
#: np.save's header for a 2-D uint8 array (format 1.0: padded to 128 bytes).
NPY_HEADER = 128
#: The most training images the selection compares pairwise (a quadratic matrix).
MAX_CANDIDATES = 4096


def path_for(model_path: Path) -> Path:
    """``models/relu_cnn.onnx`` -> ``models/relu_cnn.patterns.npy``."""
    return model_path.with_suffix(".patterns.npy")


@torch.no_grad()
def training_patterns(model: nn.Module, splits: Splits) -> tuple[np.ndarray, int]:
    """The ``LAYER > 0`` patterns of the (unaugmented) training images that fit MAX_BYTES:
    distinct np.packbits rows, the most representative first; and the layer's units."""
    captured: list[torch.Tensor] = []
    hook = getattr(model, LAYER).register_forward_hook(
        lambda _m, _i, out: captured.append(out.detach())
    )
    try:
        model.eval()
        model(normalise(splits.train.x, splits))
    finally:
        hook.remove()
    fired = (captured[0] > 0).numpy().reshape(len(splits.train.x), -1)
    packed = np.unique(np.packbits(fired, axis=1), axis=0)
    rows = max(1, (MAX_BYTES - NPY_HEADER) // packed.shape[1])
    return select(packed, rows), fired.shape[1]


def select(packed: np.ndarray, rows: int) -> np.ndarray:
    """At most ``rows`` of the distinct patterns ``packed``, chosen greedily so that every
    training pattern has a chosen one near it (facility location: each step adds the row that
    most lowers the sum over all patterns of the Hamming distance to the nearest chosen row).
    Unlike a random subset it keeps typical patterns and drops rare outliers."""
    if len(packed) <= rows:
        return packed
    if len(packed) > MAX_CANDIDATES:  # deterministic subsample: the matrix stays 4096^2
        keep = np.random.default_rng(0).choice(len(packed), MAX_CANDIDATES, replace=False)
        packed = packed[np.sort(keep)]
    distance = distances(packed, packed).astype(np.float32)
    nearest = np.full(len(packed), np.float32(packed.shape[1] * 8))
    chosen: list[int] = []
    lower = np.empty_like(distance)  # the gains' work space, reused: no allocation per step
    gain = np.empty(len(packed), np.float32)
    for _ in range(rows):
        np.subtract(nearest[None, :], distance, out=lower)
        np.maximum(lower, 0, out=lower)
        lower.sum(axis=1, out=gain)
        gain[chosen] = -1
        best = int(gain.argmax())
        chosen.append(best)
        np.minimum(nearest, distance[best], out=nearest)
    return packed[chosen]


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances (len(a), len(b)) between bit-packed rows."""
    if a.shape[1] % 8 == 0:  # 8 bytes at a time: 8x fewer elements to xor and count
        a = np.ascontiguousarray(a).view(np.uint64)
        b = np.ascontiguousarray(b).view(np.uint64)
    out = np.empty((len(a), len(b)), dtype=np.int64)
    for start in range(0, len(a), 256):
        xor = a[start : start + 256, None, :] ^ b[None, :, :]
        out[start : start + 256] = np.bitwise_count(xor).sum(axis=2, dtype=np.int64)
    return out


def write(patterns: np.ndarray, units: int, model_path: Path) -> PatternsRef:
    """Save the patterns (.npy, atomically) beside the model; return the metadata entry."""
    buffer = io.BytesIO()
    np.save(buffer, patterns, allow_pickle=False)
    data = buffer.getvalue()
    path = path_for(model_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return PatternsRef(
        file=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        layer=LAYER,
        patterns=len(patterns),
        units=units,
    )
