"""The typed activation registry: each entry's kernels, parameters, conventions and description."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from service.activations.params import Param, Params
from service.errors import InvalidInput, NotFound, excerpt

Array = npt.NDArray[Any]
Kernel = Callable[[Array, Params], Array]
"""f(x, params) -> array of x's dtype (value or elementwise derivative)."""
VjpKernel = Callable[[Array, Array, Params], Array]
"""vjp(x, grad_output, params) -> the gradient with respect to x."""


@dataclass(frozen=True)
class Extra:
    """An output beyond value/grad/vjp: prelu's weight gradient, rrelu's applied slopes."""

    compute: Callable[[Array, Array | None, Params], Array]
    description: str
    needs_grad_output: bool = False


@dataclass(frozen=True)
class Activation:
    """One registered function: how to compute it and how to explain it to users."""

    name: str
    formula: str
    value: Kernel
    derivative: Kernel | None
    """The elementwise f'(x); None where the Jacobian is not diagonal (softmax, glu)."""
    kinks: str
    """The gradient convention at points where f is not differentiable (as torch autograd)."""
    piecewise_linear: bool
    onnx: str
    """The ONNX operator (and attributes) that computes the same function."""
    params: tuple[Param, ...] = ()
    vjp_kernel: VjpKernel | None = None
    """A VJP computed other than as grad_output * derivative (to match torch's rounding)."""
    cross_check: Callable[[Params], None] | None = None
    """Rules relating two parameters (hardtanh min_val < max_val, rrelu lower <= upper)."""
    check: Callable[[Params, tuple[int, ...]], None] | None = None
    """Checks that need x's shape (dim in range, weight size, even halves)."""
    output_shape: Callable[[tuple[int, ...], Params], tuple[int, ...]] | None = None
    prepare: Callable[[Array, Params], Params] | None = None
    """Runs once per request before any output (rrelu samples its slopes here)."""
    extras: Mapping[str, Extra] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    fused: Callable[[Params], tuple[str, Array]] | None = None
    """value and f' in one compiled pass: params -> (kernel name in compiled.KERNELS (float32)
    and fused.KERNELS64 (float64) when one serves there, its params)."""

    @property
    def elementwise(self) -> bool:
        return self.derivative is not None

    @property
    def outputs(self) -> tuple[str, ...]:
        names = ("value", "grad", "vjp") if self.elementwise else ("value", "vjp")
        return names + tuple(self.extras)

    def shape_out(self, shape: tuple[int, ...], params: Params) -> tuple[int, ...]:
        return shape if self.output_shape is None else self.output_shape(shape, params)

    def vjp(self, x: Array, grad_output: Array, params: Params) -> Array:
        if self.vjp_kernel is not None:
            return self.vjp_kernel(x, grad_output, params)
        assert self.derivative is not None, f"{self.name} needs a vjp kernel"
        # g * f'(x) rounded once from f' as returned (kernels may compute in a wider dtype).
        derivative: Array = self.derivative(x, params).astype(x.dtype, copy=False)
        return np.multiply(grad_output, derivative)

    def describe(self) -> dict[str, Any]:
        """The user-facing description served at GET /activations."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "formula": self.formula,
            "kind": "piecewise-linear" if self.piecewise_linear else "smooth",
            "elementwise": self.elementwise,
            "params": [p.describe() for p in self.params],
            "kinks": self.kinks,
            "outputs": list(self.outputs),
            "extras": {name: extra.description for name, extra in self.extras.items()},
            "onnx": self.onnx,
        }

    def validate(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """Params with defaults filled in; unknown, missing or invalid ones are InvalidInput."""
        raw = dict(raw or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            valid = ", ".join(known) if known else "none: it takes no parameters"
            raise InvalidInput(
                f"unknown parameter {excerpt(unknown[0])} for {self.name}; valid parameters: {valid}"
            )
        params = {
            name: param.coerce(self.name, raw[name]) if name in raw else param.missing(self.name)
            for name, param in known.items()
        }
        if self.cross_check is not None:
            self.cross_check(params)
        return params


#: Every activation by name; aliases (swish) point at the same entry.
REGISTRY: dict[str, Activation] = {}


def register(activation: Activation) -> Activation:
    for name in (activation.name, *activation.aliases):
        assert name not in REGISTRY, f"{name} registered twice"
        REGISTRY[name] = activation
    return activation


def get_activation(name: str) -> Activation:
    """The entry named ``name`` (or an alias); NotFound lists the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise NotFound(
            f"unknown activation function {excerpt(name)}; valid names: {', '.join(sorted(REGISTRY))}"
        ) from None


def check_dim(function: str, dim: int, ndim: int) -> int:
    """``dim`` normalised to 0..ndim-1 (a 0-d array counts as rank 1, as in torch)."""
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise InvalidInput(
            f"{function}: dim={dim} is out of range for x of rank {ndim}; "
            f"dim must be in {-rank}..{rank - 1}"
        )
    return dim % rank
