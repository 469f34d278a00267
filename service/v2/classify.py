"""The classification extension: an output's top N values as "<value>:<index>[:<label>]"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from service.errors import InvalidInput


def classification(
    array: np.ndarray[Any, Any], count: int, labels: Sequence[str] | None
) -> np.ndarray[Any, Any]:
    """BYTES of shape [..., count]: along the last axis the ``count`` largest values, largest
    first (ties: the lower index first), each as Triton writes it (value with 6 decimals)."""
    if array.ndim == 0 or array.dtype.kind not in "fiub":
        raise InvalidInput("classification applies to numeric outputs of rank 1 or more")
    classes = array.shape[-1]
    if not 1 <= count <= classes:
        raise InvalidInput(f"classification must be between 1 and {classes}, got {count}")
    rows = array.reshape(-1, classes).astype(np.float64)
    order = (-rows).argsort(axis=1, kind="stable")[:, :count]
    items = [
        (
            f"{row[i]:f}:{i}:{labels[i]}"
            if labels is not None and i < len(labels)
            else f"{row[i]:f}:{i}"
        ).encode()
        for row, indices in zip(rows, order.tolist(), strict=True)
        for i in indices
    ]
    return np.array(items, dtype=object).reshape(*array.shape[:-1], count)
