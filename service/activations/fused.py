"""The compiled path (float32, and float64 in double-double): value and f'(x) of an elementwise
activation in one pass, value and VJP along a dimension, and the start-up warm-up that compiles
(or loads from numba's cache) every kernel before the first request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from service.activations import (
    compiled,
    compiled64,
    compiled64_along,
    compiled64_logistic,
    compiled_along,
)
from service.activations.params import Params
from service.activations.registry import REGISTRY, Activation, Array

#: The float64 kernels: those whose numpy forms need long double or many exact corrections.
KERNELS64 = {**compiled64.KERNELS, **compiled64_logistic.KERNELS}


def _kernels(x: Array) -> dict[str, compiled.Fused]:
    """The elementwise kernels for x's dtype."""
    return KERNELS64 if x.dtype == np.float64 else compiled.KERNELS


def _along(x: Array) -> dict[str, Callable[..., None]]:
    """The kernels along a dimension for x's dtype, by activation name."""
    kernels = compiled64_along.ALONG if x.dtype == np.float64 else compiled_along.ALONG
    if not kernels:  # pragma: no cover - without numba
        return {}
    glu = compiled64_logistic.ALONG if x.dtype == np.float64 else kernels
    return {"glu": glu["glu"], "softmax": kernels["softmax"], "log_softmax": kernels["softmax"]}


def available(activation: Activation, x: Array, params: Params) -> bool:
    """True when a compiled kernel serves ``activation`` at ``x`` with validated ``params``
    (non-empty; float32, or float64 for the kernels of compiled64)."""
    if activation.fused is None or x.size == 0:
        return False
    if not activation.elementwise:
        return activation.name in _along(x)
    return activation.fused(params)[0] in _kernels(x)


def value_and_grad(
    activation: Activation,
    x: Array,
    params: Params,
    value: Array | None = None,
    grad: Array | None = None,
) -> tuple[Array, Array]:
    """f(x) and f'(x) for float32 ``x`` of any shape (``available`` must hold), written into
    ``value`` and ``grad`` when given (flat, contiguous, x's size), else into new arrays."""
    assert activation.fused is not None
    name, kernel_params = activation.fused(params)
    flat = np.ascontiguousarray(x).reshape(-1)
    value = np.empty_like(flat) if value is None else value
    grad = np.empty_like(flat) if grad is None else grad
    _kernels(x)[name](flat, kernel_params, value, grad)
    return value.reshape(x.shape), grad.reshape(x.shape)


def value_and_vjp(
    activation: Activation, x: Array, g: Array | None, params: Params
) -> tuple[Array, Array]:
    """softmax, log_softmax or glu of ``x`` and its VJP for ``g`` (zeros when None);
    ``available`` must hold."""
    x1 = np.ascontiguousarray(np.atleast_1d(x))
    axis = params["dim"] % x1.ndim
    before, size = int(np.prod(x1.shape[:axis])), x1.shape[axis]
    if activation.name == "glu":
        x3 = x1.reshape(before, 2, -1)
        out_shape = activation.shape_out(x1.shape, params)
        g2 = np.zeros(out_shape, x1.dtype) if g is None else g
        value, vjp = np.empty(out_shape, x1.dtype), np.empty_like(x1)
        g_rows = np.ascontiguousarray(g2).reshape(before, -1)
        _along(x1)["glu"](x3, g_rows, value.reshape(before, -1), vjp.reshape(x3.shape))
        return value, vjp
    # Rows along the last axis, contiguous, so that each row's loops vectorise.
    rows = np.ascontiguousarray(np.moveaxis(x1, axis, -1))
    g_rows = np.zeros_like(rows) if g is None else np.moveaxis(np.atleast_1d(g), axis, -1)
    x2, g2 = rows.reshape(-1, size), np.ascontiguousarray(g_rows).reshape(-1, size)
    value, vjp = np.empty_like(x2), np.empty_like(x2)
    peak = np.max(x2, axis=1)  # numpy's max propagates NaN
    _along(x2)["softmax"](x2, peak, g2, activation.name == "log_softmax", value, vjp)
    odd = ~np.isfinite(peak)  # rows with NaN or +-inf at the top: the numpy kernels' IEEE results
    if odd.any():
        assert activation.vjp_kernel is not None
        value[odd] = activation.value(x2[odd], {"dim": -1})
        vjp[odd] = activation.vjp_kernel(x2[odd], g2[odd], {"dim": -1})
    back = [np.moveaxis(a.reshape(rows.shape), -1, axis).reshape(x.shape) for a in (value, vjp)]
    return back[0], back[1]


def warm_up(cache_seed: Path | None = None) -> list[str]:
    """Run every compiled kernel once, float32 and float64 (compiling it, or loading numba's
    on-disk cache, first seeded from ``cache_seed`` when given), so that no request pays for
    it; returns the names of the activations served compiled in float32."""
    if cache_seed is not None:
        compiled.seed_cache(cache_seed)
    served = []
    for dtype in (np.float32, np.float64):
        x = np.linspace(-3, 3, 8, dtype=dtype).reshape(2, 4)
        for name, activation in REGISTRY.items():
            if name != activation.name or activation.fused is None:
                continue
            for params in _param_sets(activation):
                if not available(activation, x, params):
                    continue
                if activation.elementwise:
                    value_and_grad(activation, x, params)
                else:
                    value_and_vjp(activation, x, None, params)
                if dtype == np.float32 and name not in served:
                    served.append(name)
    return served


def _param_sets(activation: Activation) -> list[Params]:
    if activation.name == "gelu":
        return [{"approximate": "none"}, {"approximate": "tanh"}]
    if not activation.elementwise:
        return [{"dim": -1}]
    return [activation.validate({})]
