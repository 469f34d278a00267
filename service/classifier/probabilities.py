"""Probabilities from logits: a stable softmax and the top-k classes per image."""

from __future__ import annotations

from typing import Any

import numpy as np


def softmax(logits: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Row-wise softmax in float64, stable for any finite logits (the row maximum first)."""
    # The ufuncs' reduce straight away: ndarray.max/sum go through Python wrappers first.
    z = logits.astype(np.float64)
    z -= np.maximum.reduce(z, axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= np.add.reduce(z, axis=1, keepdims=True)
    return z


def top_k(probabilities: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any]:
    """Indices (N, k) of the k most probable classes per row, most probable first; ties keep
    the lower index first, as argmax does."""
    order: np.ndarray[Any, Any] = (-probabilities).argsort(axis=1, kind="stable")[:, :k]
    return order
