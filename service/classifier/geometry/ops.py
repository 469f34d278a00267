"""The linear and switching ONNX ops our exporter emits, in float64, with forward-mode tangents.

A value is a ``Dual``: the point's values (N, ...) and, unless it is a constant, tangents
(N, K, ...) along K input directions. Some directions may be *homogeneous* (they carry the
biases too): with the pattern frozen, such a direction from a zero input yields the affine
map's offset. The switching ops (Relu, LeakyRelu, MaxPool) decide their pattern by the
context's rule and record what the geometry needs (values, tangents, the decision).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Array = np.ndarray[Any, np.dtype[np.float64]]
#: "point": the ONNX Runtime / torch rule (ReLU on iff z > 0, the first maximum wins a pool
#: window); "forward": the pattern on (t, t + eps) along tangent 0 (values within tolerance of
#: a switch are decided by their slope; among tied pool entries the steepest wins).
Mode = Literal["point", "forward"]
#: Values within this fraction of their layer's largest magnitude count as on the switch.
RELATIVE_TOLERANCE = 1e-9


@dataclass
class Dual:
    value: Array
    tangent: Array | None = None  # None: a constant (initializer or Constant node)


@dataclass
class Switch:
    """One layer whose pattern can change: its inputs (per unit), their tangents, the decision."""

    name: str
    kind: Literal["relu", "maxpool"]
    shape: tuple[int, ...]  # one image's output shape
    value: Array  # relu (N, U); maxpool (N, U, window)
    tangent: Array | None  # (N, K, U) or (N, K, U, window)
    state: np.ndarray[Any, Any]  # relu: mask (N, U) bool; maxpool: winner (N, U) int
    tau: Array  # (N,) tolerance per image


@dataclass
class Context:
    mode: Mode = "point"
    homogeneous: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    switches: list[Switch] = field(default_factory=list)


Kernel = Callable[[Context, str, dict[str, Any], list[Dual]], Dual]


def lift(a: Array, ndim: int) -> Array:
    """An (N, ...) array (or a trailing-broadcast constant) broadcast against (N, K, ...)."""
    return np.expand_dims(a, 1) if a.ndim == ndim else a


def _with_bias(ctx: Context, tangent: Array, bias: Array, ndim: int) -> Array:
    if ctx.homogeneous is not None and ctx.homogeneous.any():
        tangent[:, ctx.homogeneous] += lift(bias, ndim)
    return tangent


def _conv_values(x: Array, w: Array, pads: list[int], strides: list[int]) -> Array:
    rank = len(strides)
    widths = [(0, 0), (0, 0)] + [(pads[i], pads[i + rank]) for i in range(rank)]
    padded = np.pad(x, widths)
    windows = np.lib.stride_tricks.sliding_window_view(padded, w.shape[2:], axis=(2, 3))
    windows = windows[:, :, :: strides[0], :: strides[1]]
    out = np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3]))  # (N, oh, ow, O)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def conv_matrix(
    w: Array, attrs: dict[str, Any], shape: tuple[int, ...]
) -> tuple[Array, tuple[int, ...]]:
    """The convolution of one (C, H, W) input as a dense matrix (C*H*W, outputs) and the
    output's shape: for small images one matrix product beats im2col's window copies (3x on
    8x8 digits)."""
    size = int(np.prod(shape))
    basis = np.eye(size).reshape(size, *shape)
    out = _conv_values(basis, w, attrs.get("pads", [0] * 4), attrs.get("strides", [1, 1]))
    return np.ascontiguousarray(out.reshape(size, -1)), tuple(out.shape[1:])


def _conv_linear(x: Array, w: Array, attrs: dict[str, Any]) -> Array:
    """The convolution without bias of a batch (N, C, H, W)."""
    dense = attrs.get("dense")
    if dense is not None:
        out: Array = (x.reshape(len(x), -1) @ dense).reshape(len(x), *attrs["dense_shape"])
        return out
    return _conv_values(x, w, attrs.get("pads", [0] * 4), attrs.get("strides", [1, 1]))


def conv(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    x, w = args[0], args[1].value
    bias = args[2].value[:, None, None] if len(args) > 2 else np.zeros((w.shape[0], 1, 1))
    value = _conv_linear(x.value, w, attrs) + bias
    tangent = None
    if x.tangent is not None:
        n, k = x.tangent.shape[:2]
        flat = _conv_linear(x.tangent.reshape(n * k, *x.tangent.shape[2:]), w, attrs)
        tangent = _with_bias(ctx, flat.reshape(n, k, *flat.shape[1:]), bias, value.ndim)
    return Dual(value, tangent)


def gemm(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    a, b = args[0], args[1].value
    b = b.T if attrs.get("transB", 0) else b
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    bias = beta * args[2].value if len(args) > 2 else np.zeros(b.shape[1])
    value = alpha * (a.value @ b) + bias
    tangent = None
    if a.tangent is not None:
        tangent = _with_bias(ctx, alpha * (a.tangent @ b), bias, value.ndim)
    return Dual(value, tangent)


def matmul(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    a, b = args
    if b.tangent is not None:
        raise ValueError(f"{name}: MatMul by a computed right operand is not supported")
    tangent = None if a.tangent is None else a.tangent @ b.value
    return Dual(a.value @ b.value, tangent)


def _linear_sum(ctx: Context, a: Dual, b: Dual, sign: float) -> Dual:
    value = a.value + sign * b.value
    if a.tangent is None and b.tangent is None:
        return Dual(value)
    parts = []
    for arg, factor in ((a, 1.0), (b, sign)):
        if arg.tangent is not None:
            parts.append(factor * arg.tangent)
    tangent = parts[0] + parts[1] if len(parts) == 2 else parts[0].copy()
    for arg, factor in ((a, 1.0), (b, sign)):
        if arg.tangent is None:  # a constant term is part of the offset
            tangent = _with_bias(ctx, tangent, factor * arg.value, value.ndim)
    return Dual(value, tangent)


def add(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    return _linear_sum(ctx, args[0], args[1], 1.0)


def sub(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    return _linear_sum(ctx, args[0], args[1], -1.0)


def mul(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    a, b = args
    value = a.value * b.value
    nd = value.ndim
    parts = [t * lift(o.value, nd) for t, o in ((a.tangent, b), (b.tangent, a)) if t is not None]
    return Dual(value, sum(parts[1:], parts[0]) if parts else None)


def div(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    a, b = args
    value = a.value / b.value
    nd = value.ndim
    parts = []
    if a.tangent is not None:
        parts.append(a.tangent / lift(b.value, nd))
    if b.tangent is not None:
        parts.append(-b.tangent * lift(value / b.value, nd))
    return Dual(value, sum(parts[1:], parts[0]) if parts else None)


def _tolerance(values: Array) -> Array:
    tau: Array = RELATIVE_TOLERANCE * np.abs(values).max(axis=1)
    return tau


def _rectifier(ctx: Context, name: str, x: Dual, slope: float) -> Dual:
    n = len(x.value)
    z = x.value.reshape(n, -1)
    tangent = None if x.tangent is None else x.tangent.reshape(n, x.tangent.shape[1], -1)
    tau = _tolerance(z)
    if ctx.mode == "forward" and tangent is not None:
        near = np.abs(z) <= tau[:, None]
        mask = (z > tau[:, None]) | (near & (tangent[:, 0] > 0))
    else:
        mask = z > 0
    ctx.switches.append(Switch(name, "relu", x.value.shape[1:], z, tangent, mask, tau))
    shaped = mask.reshape(x.value.shape)
    value = np.where(shaped, x.value, slope * x.value)
    out = None
    if x.tangent is not None:
        out = np.where(shaped[:, None], x.tangent, slope * x.tangent)
    return Dual(value, out)


def relu(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    return _rectifier(ctx, name, args[0], 0.0)


def leaky_relu(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    return _rectifier(ctx, name, args[0], float(attrs.get("alpha", 0.01)))


def _windows(a: Array, kernel: list[int]) -> Array:
    """(lead..., C, H, W) -> (lead..., C * oh * ow, kh * kw): non-overlapping windows."""
    kh, kw = kernel
    *head, c, h, w = a.shape
    oh, ow = h // kh, w // kw
    a = a[..., : oh * kh, : ow * kw].reshape(*head, c, oh, kh, ow, kw)
    a = np.moveaxis(a, -3, -2)  # (..., c, oh, ow, kh, kw)
    return a.reshape(*head, c * oh * ow, kh * kw)


def max_pool(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    x, kernel = args[0], list(attrs["kernel_shape"])
    n, c, h, w = x.value.shape
    out_shape = (c, h // kernel[0], w // kernel[1])
    h_win = _windows(x.value, kernel)  # (N, U, k)
    t_win = None if x.tangent is None else _windows(x.tangent, kernel)  # (N, K, U, k)
    tau = _tolerance(h_win.reshape(n, -1))
    if ctx.mode == "forward" and t_win is not None:
        best = h_win.max(axis=2, keepdims=True)
        tied = h_win >= best - tau[:, None, None]
        winner = np.where(tied, t_win[:, 0], -np.inf).argmax(axis=2)
    else:
        winner = h_win.argmax(axis=2)  # the first maximum, as ONNX Runtime and torch pick it
    ctx.switches.append(Switch(name, "maxpool", out_shape, h_win, t_win, winner, tau))
    value = np.take_along_axis(h_win, winner[:, :, None], axis=2).reshape(n, *out_shape)
    out = None
    if t_win is not None:
        picked = np.take_along_axis(t_win, winner[:, None, :, None], axis=3)
        out = picked.reshape(n, t_win.shape[1], *out_shape)
    return Dual(value, out)


def flatten(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    x = args[0]
    n = len(x.value)
    tangent = None if x.tangent is None else x.tangent.reshape(n, x.tangent.shape[1], -1)
    return Dual(x.value.reshape(n, -1), tangent)


def reshape(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    x, shape = args[0], [int(s) for s in args[1].value]
    n = len(x.value)
    rest = [d if d else x.value.shape[i + 1] for i, d in enumerate(shape[1:])]
    tangent = None if x.tangent is None else x.tangent.reshape(n, x.tangent.shape[1], *rest)
    return Dual(x.value.reshape(n, *rest), tangent)


def identity(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    return args[0]
