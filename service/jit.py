# mypy: disable-error-code="misc, no-any-return, assignment"
"""numba's compiler as the service's kernels use it: the activations' (service/activations/
compiled*.py) and the classifier's input pass (service/classifier/normalize.py)."""

from __future__ import annotations

from typing import Any

try:
    import numba
except ImportError:  # pragma: no cover - the numpy paths serve without numba
    numba = None

AVAILABLE = numba is not None
"""numba is installed: the compiled kernels serve."""


def compile_kernel(function: Any, fastmath: set[str]) -> Any:
    """Compiled with numba's on-disk cache where the package directory is writable or a cache
    directory is found (NUMBA_CACHE_DIR), else compiled afresh at each start (warm-up).
    Compilation itself waits for the first call of each argument type."""
    options: dict[str, Any] = {"fastmath": fastmath, "error_model": "numpy", "nogil": True}
    try:
        return numba.njit(cache=True, **options)(function)
    except RuntimeError:  # pragma: no cover - "no locator available": a read-only install
        return numba.njit(**options)(function)
