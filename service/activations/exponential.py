# mypy: disable-error-code="no-any-return"
"""The exponential linear units: elu, selu and celu, in branch-free forms (expm1 on the negative side)."""

from __future__ import annotations

import numpy as np

from service.activations import compiled
from service.activations import numerics as nx
from service.activations.numerics import positive_mask, work
from service.activations.params import Param, Params
from service.activations.registry import Activation, Array, register

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
#: alpha * scale rounded once from the exact product (the product of the two floats is 1 ULP off).
_SELU_ALPHA_SCALE = 1.7580993408473768599402175208123


def elu(x: Array, p: Params) -> Array:
    w = work(x)
    return np.maximum(w, 0) + p["alpha"] * np.expm1(np.minimum(w, 0))


def elu_grad(x: Array, p: Params) -> Array:
    w = work(x)
    positive = positive_mask(w)
    return positive + (1 - positive) * (p["alpha"] * np.exp(np.minimum(w, 0)))


def selu(x: Array, p: Params) -> Array:
    w = work(x)
    return SELU_SCALE * np.maximum(w, 0) + _SELU_ALPHA_SCALE * np.expm1(np.minimum(w, 0))


def selu_grad(x: Array, p: Params) -> Array:
    w = work(x)
    positive = positive_mask(w)
    return positive * SELU_SCALE + (1 - positive) * (_SELU_ALPHA_SCALE * np.exp(np.minimum(w, 0)))


def _quotient(x: Array, alpha: float) -> tuple[Array, Array]:
    """min(x, 0) / alpha as q + c, c the correction that exp(q) (1 + c) needs in float64
    (the rounding of q, amplified by |q| in exp, would cost up to 450 ULP at q = -700)."""
    w = np.minimum(work(x), 0)
    q = w / alpha
    if not nx.wide(x):
        return q, np.zeros_like(q)
    qc = np.clip(q, -1e4, 1e4)  # beyond, exp(q) is 0 anyway; keeps the split finite
    hi, lo = nx.two_prod(qc, np.full_like(qc, alpha))
    return q, ((np.clip(w, -1e4 * abs(alpha), 0) - hi) - lo) / alpha


def celu(x: Array, p: Params) -> Array:
    alpha = p["alpha"]
    q, c = _quotient(x, alpha)
    return np.maximum(work(x), 0) + alpha * (np.expm1(q) + np.exp(q) * c)


def celu_grad(x: Array, p: Params) -> Array:
    positive = positive_mask(work(x))
    q, c = _quotient(x, p["alpha"])
    return positive + (1 - positive) * (np.exp(q) * (1 + c))


def _celu_fused(p: Params) -> tuple[str, Array]:
    # The compiled kernels take exp of x / alpha <= 0 only: a negative alpha (exp of a positive
    # argument) is left to the numpy kernels, under a name no compiled table has.
    name = "elu" if p["alpha"] > 0 else "celu, negative alpha"
    return name, compiled.elu_params(p["alpha"], p["alpha"], 1.0, 1.0)


def _nonzero_alpha(value: float) -> bool:
    return value != 0


_ALPHA = Param("alpha", "float", "scale of the negative part", default=1.0)

register(
    Activation(
        name="elu",
        formula="x if x > 0 else alpha * (exp(x) - 1)",
        value=elu,
        derivative=elu_grad,
        fused=lambda p: ("elu", compiled.elu_params(p["alpha"], 1.0, 1.0, 1.0)),
        params=(_ALPHA,),
        kinks="elu'(0) = alpha (the x <= 0 branch)",
        piecewise_linear=False,
        onnx="Elu(alpha=alpha)",
    )
)
register(
    Activation(
        name="selu",
        formula=f"scale * (x if x > 0 else alpha * (exp(x) - 1)); alpha = {SELU_ALPHA!r}, "
        f"scale = {SELU_SCALE!r} (fixed)",
        value=selu,
        derivative=selu_grad,
        fused=lambda p: ("elu", compiled.elu_params(*compiled.SELU)),
        kinks="selu'(0) = alpha * scale = 1.7580993408473768 (torch's float64: 1.7580993408473766)",
        piecewise_linear=False,
        onnx="Selu",
    )
)
register(
    Activation(
        name="celu",
        formula="max(0, x) + min(0, alpha * (exp(x / alpha) - 1))",
        value=celu,
        derivative=celu_grad,
        fused=_celu_fused,
        params=(
            Param(
                "alpha",
                "float",
                "scale of the negative part",
                default=1.0,
                rule=_nonzero_alpha,
                rule_text="be non-zero",
            ),
        ),
        kinks="celu'(0) = 1",
        piecewise_linear=False,
        onnx="Celu(alpha=alpha)",
    )
)
