"""The smooth ops of the gelu, silu and elu variants: value and tangent, no region."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from service import special
from service.classifier.geometry.ops import Array, Context, Dual, Kernel, lift


def _smooth(
    function: Callable[[Array], Array], derivative: Callable[[Array, Array], Array]
) -> Kernel:
    def kernel(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
        x = args[0]
        value = function(x.value)
        if x.tangent is None:
            return Dual(value)
        return Dual(value, x.tangent * lift(derivative(x.value, value), value.ndim))

    return kernel


def _elu(alpha: float) -> Kernel:
    return _smooth(
        lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
        lambda x, y: np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0))),
    )


def elu(ctx: Context, name: str, attrs: dict[str, Any], args: list[Dual]) -> Dual:
    return _elu(float(attrs.get("alpha", 1.0)))(ctx, name, attrs, args)


erf = _smooth(special.erf, lambda x, y: 2 / np.sqrt(np.pi) * np.exp(-x * x))
sigmoid = _smooth(special.expit, lambda x, y: y * (1 - y))
tanh = _smooth(np.tanh, lambda x, y: 1 - y * y)
