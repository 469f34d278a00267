"""The OOD reference: the training images' act_fc activation patterns, bit-packed beside the model."""

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

#: The layer whose on/off pattern is compared: the last hidden one (128 units by default).
LAYER = "act_fc"


def path_for(model_path: Path) -> Path:
    """``models/relu_cnn.onnx`` -> ``models/relu_cnn.patterns.npy``."""
    return model_path.with_suffix(".patterns.npy")


@torch.no_grad()
def training_patterns(model: nn.Module, splits: Splits) -> np.ndarray:
    """The distinct ``act_fc > 0`` patterns of the (unaugmented) training images, np.packbits
    rows in a stable order (np.unique sorts them)."""
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
    return np.unique(np.packbits(fired, axis=1), axis=0)


def write(patterns: np.ndarray, model_path: Path, units: int) -> PatternsRef:
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
