# mypy: disable-error-code="no-any-return"
"""softmax, log_softmax and glu: activations along a dimension, whose Jacobian is not diagonal."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from service.activations.params import Param, Params
from service.activations.registry import Activation, Array, check_dim, register
from service.activations.smooth import sigmoid, sigmoid_grad
from service.errors import InvalidInput


def _along(x: Array, p: Params) -> tuple[Array, int]:
    """x (a 0-d array seen as shape (1,), as torch does) and the normalised dim."""
    return np.atleast_1d(x), check_dim("", p["dim"], x.ndim)


def _shifted(x: Array, axis: int) -> Array:
    # Shift by the max so that exp never overflows (softmax without it is NaN for x > 88).
    return x - np.max(x, axis=axis, keepdims=True)


def softmax(x: Array, p: Params) -> Array:
    if x.size == 0:
        return x.copy()
    x1, axis = _along(x, p)
    e = np.exp(_shifted(x1, axis))
    return (e / np.sum(e, axis=axis, keepdims=True)).reshape(x.shape)


def softmax_vjp(x: Array, g: Array, p: Params) -> Array:
    if x.size == 0:
        return g.copy()
    y, axis = _along(softmax(x, p), p)
    g1 = np.atleast_1d(g)
    return (y * (g1 - np.sum(g1 * y, axis=axis, keepdims=True))).reshape(x.shape)


def log_softmax(x: Array, p: Params) -> Array:
    if x.size == 0:
        return x.copy()
    x1, axis = _along(x, p)
    z = _shifted(x1, axis)
    return (z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))).reshape(x.shape)


def log_softmax_vjp(x: Array, g: Array, p: Params) -> Array:
    if x.size == 0:
        return g.copy()
    y, axis = _along(log_softmax(x, p), p)
    g1 = np.atleast_1d(g)
    return (g1 - np.exp(y) * np.sum(g1, axis=axis, keepdims=True)).reshape(x.shape)


def _halves(x: Array, p: Params) -> tuple[Array, Array, int]:
    axis = check_dim("", p["dim"], x.ndim)
    a, b = np.split(x, 2, axis=axis)
    return a, b, axis


def glu(x: Array, p: Params) -> Array:
    a, b, _ = _halves(x, p)
    return a * sigmoid(b)


def glu_vjp(x: Array, g: Array, p: Params) -> Array:
    a, b, axis = _halves(x, p)
    return np.concatenate([g * sigmoid(b), (g * sigmoid_grad(b)) * a], axis=axis)


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
