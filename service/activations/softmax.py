# mypy: disable-error-code="no-any-return"
"""softmax, log_softmax and glu: activations along a dimension, whose Jacobian is not diagonal."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from service.activations import numerics as nx
from service.activations.numerics import work
from service.activations.params import Param, Params
from service.activations.registry import Activation, Array, check_dim, register
from service.errors import InvalidInput


def _along(x: Array, p: Params) -> tuple[Array, int]:
    """x (a 0-d array seen as shape (1,), as torch does) and the normalised dim."""
    return np.atleast_1d(x), check_dim("", p["dim"], x.ndim)


def _shifted(x: Array, axis: int) -> tuple[Array, Array | float]:
    """x - max along axis (so that exp never overflows) as d + err, err its rounding error in
    float64 (exp would amplify it by |d|, up to 745)."""
    w = work(x)
    m = np.max(w, axis=axis, keepdims=True)
    if not nx.wide(x):
        return w - m, 0.0
    d, err = nx.two_diff(w, m)
    return d, np.nan_to_num(err, nan=0.0, posinf=0.0, neginf=0.0)


def _row_sum(a: Array, axis: int) -> Array:
    return np.sum(a, axis=axis, keepdims=True)


def _softmax(x1: Array, axis: int) -> Array:
    """float32: in float64; float64: exp in float64, the sum, the quotient and what follows
    (the VJP) in long double."""
    d, err = _shifted(x1, axis)
    e = nx.precise(np.exp(d) * (1 + err)) if nx.wide(x1) else np.exp(d)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax(x: Array, p: Params) -> Array:
    if x.size == 0:
        return x.copy()
    x1, axis = _along(x, p)
    return _softmax(x1, axis).reshape(x.shape)


def softmax_vjp(x: Array, g: Array, p: Params) -> Array:
    if x.size == 0:
        return g.copy()
    x1, axis = _along(x, p)
    y = _softmax(x1, axis)
    g1 = work(np.atleast_1d(g))
    return (y * (g1 - _row_sum(g1 * y, axis))).reshape(x.shape)


def log_softmax(x: Array, p: Params) -> Array:
    if x.size == 0:
        return x.copy()
    x1, axis = _along(x, p)
    d, err = _shifted(x1, axis)
    # log(sum exp(d)) = log1p(the sum without one maximum): log of a sum near 1 would cancel.
    at_max = (d == 0).astype(np.float64)
    rest = np.sum(np.exp(d) * (1 + err) * (1 - at_max), axis=axis, keepdims=True)
    rest += np.sum(at_max, axis=axis, keepdims=True) - 1
    return ((d - np.log1p(rest)) + err).reshape(x.shape)


def log_softmax_vjp(x: Array, g: Array, p: Params) -> Array:
    if x.size == 0:
        return g.copy()
    x1, axis = _along(x, p)
    y = _softmax(x1, axis)  # exp(log_softmax) without exp's amplification of its rounding
    g1 = work(np.atleast_1d(g))
    return (g1 - y * _row_sum(g1, axis)).reshape(x.shape)


def _halves(x: Array, p: Params) -> tuple[Array, Array, int]:
    axis = check_dim("", p["dim"], x.ndim)
    a, b = np.split(work(x), 2, axis=axis)
    return a, b, axis


def glu(x: Array, p: Params) -> Array:
    a, b, _ = _halves(x, p)
    s = nx.logistic(b, scaled=nx.wide(x))
    return a * (s.n / (1 + s.e)) * s.scale


def glu_vjp(x: Array, g: Array, p: Params) -> Array:
    a, b, axis = _halves(x, p)
    s = nx.logistic(b, scaled=nx.wide(x))
    g1 = work(g)
    da = g1 * (s.n / (1 + s.e)) * s.scale
    db = (nx.sigmoid_grad(b.astype(x.dtype), extended=True) * a) * g1  # no subnormal factor
    db = db.astype(da.dtype)
    return np.concatenate([da, db], axis=axis)


def _check_dim(function: str) -> Callable[[Params, tuple[int, ...]], None]:
    def check(p: Params, shape: tuple[int, ...]) -> None:
        check_dim(function, p["dim"], len(shape))

    return check


def _check_glu(p: Params, shape: tuple[int, ...]) -> None:
    if not shape:
        raise InvalidInput("glu: x must have at least 1 dimension to be split in halves")
    axis = check_dim("glu", p["dim"], len(shape))
    if shape[axis] % 2:
        raise InvalidInput(
            f"glu: x has size {shape[axis]} along dim={p['dim']}; "
            "the size along dim must be even (it is split into two halves)"
        )


def _glu_shape(shape: tuple[int, ...], p: Params) -> tuple[int, ...]:
    axis = p["dim"] % len(shape)
    return (*shape[:axis], shape[axis] // 2, *shape[axis + 1 :])


_DIM = Param("dim", "int", "the dimension to normalise along", required=True)

register(
    Activation(
        name="softmax",
        fused=lambda p: ("softmax", np.zeros(1)),
        formula="exp(x - max) / sum(exp(x - max)) along dim",
        value=softmax,
        derivative=None,
        vjp_kernel=softmax_vjp,
        params=(_DIM,),
        kinks="none (smooth); VJP: y * (g - sum(g * y, dim))",
        piecewise_linear=False,
        onnx="Softmax(axis=dim) (opset >= 13)",
        check=_check_dim("softmax"),
    )
)
register(
    Activation(
        name="log_softmax",
        fused=lambda p: ("softmax", np.zeros(1)),
        formula="x - max - log(sum(exp(x - max))) along dim",
        value=log_softmax,
        derivative=None,
        vjp_kernel=log_softmax_vjp,
        params=(_DIM,),
        kinks="none (smooth); VJP: g - exp(y) * sum(g, dim)",
        piecewise_linear=False,
        onnx="LogSoftmax(axis=dim) (opset >= 13)",
        check=_check_dim("log_softmax"),
    )
)
register(
    Activation(
        name="glu",
        fused=lambda p: ("glu", np.zeros(1)),
        formula="a * sigmoid(b), where a, b are the first and second halves of x along dim",
        value=glu,
        derivative=None,
        vjp_kernel=glu_vjp,
        params=(Param("dim", "int", "the dimension split into halves", default=-1),),
        kinks="none (smooth); VJP: (g * sigmoid(b), g * a * sigmoid'(b))",
        piecewise_linear=False,
        onnx="Split, Sigmoid, Mul (no single operator)",
        check=_check_glu,
        output_shape=_glu_shape,
    )
)
