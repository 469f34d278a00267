"""evaluate: one activation on one array, the requested outputs, NaN in -> NaN out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.activations import fused
from service.activations.registry import Activation, Array
from service.errors import InvalidInput

#: The dtypes the activations compute in; float32 in -> float32 math.
DTYPES: dict[str, np.dtype[Any]] = {
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


@dataclass(frozen=True)
class Evaluation:
    """The outputs by name, and the params actually used (rrelu's drawn seed included)."""

    params: dict[str, Any]
    arrays: dict[str, Array]


def default_outputs(activation: Activation, *, grad_output: bool) -> list[str]:
    """value, grad (elementwise functions) and vjp when an upstream gradient is given."""
    names = ["value", "grad"] if activation.elementwise else ["value"]
    return [*names, "vjp"] if grad_output else names


def check_outputs(activation: Activation, outputs: Sequence[str]) -> list[str]:
    """The requested outputs, deduplicated in order; unknown ones are InvalidInput."""
    chosen = list(dict.fromkeys(outputs))
    for name in chosen:
        if name == "grad" and not activation.elementwise:
            raise InvalidInput(
                f"{activation.name} has no elementwise derivative (its Jacobian is not "
                "diagonal); ask for the output vjp with a grad_output instead"
            )
        if name not in activation.outputs:
            raise InvalidInput(
                f"unknown output {name!r} for {activation.name}; "
                f"valid outputs: {', '.join(activation.outputs)}"
            )
    if not chosen:
        raise InvalidInput(f"outputs is empty; ask for some of {', '.join(activation.outputs)}")
    return chosen


def evaluate(
    activation: Activation,
    x: Array,
    params: dict[str, Any],
    outputs: Sequence[str],
    grad_output: Array | None = None,
) -> Evaluation:
    """Compute ``outputs`` of ``activation`` at ``x`` (float32 or float64) with validated params.

    ``grad_output`` (the upstream gradient, shaped like the output) is needed for vjp and
    prelu's weight_grad; it is cast to x's dtype.
    """
    if x.dtype not in DTYPES.values():
        raise InvalidInput(f"x has dtype {x.dtype}; allowed dtypes: {', '.join(DTYPES)}")
    chosen = check_outputs(activation, outputs)
    if activation.check is not None:
        activation.check(params, x.shape)
    g = _check_grad_output(activation, x, params, chosen, grad_output)
    with np.errstate(all="ignore"):
        p = activation.prepare(x, params) if activation.prepare is not None else params
        known = _fused(activation, x, g, p, chosen)
        arrays = {
            name: known[name] if name in known else _compute(activation, name, x, g, p)
            for name in chosen
        }
        if activation.elementwise:
            _propagate_nan(x, arrays)
    used = {name: p[name] for name in params}
    return Evaluation(params=used, arrays=arrays)


def _check_grad_output(
    activation: Activation,
    x: Array,
    params: dict[str, Any],
    chosen: list[str],
    grad_output: Array | None,
) -> Array | None:
    needs = [
        name
        for name in chosen
        if name == "vjp"
        or (name in activation.extras and activation.extras[name].needs_grad_output)
    ]
    shape = activation.shape_out(x.shape, params)
    if grad_output is None:
        if needs:
            raise InvalidInput(
                f"output {needs[0]} needs grad_output: the upstream gradient, an array of the "
                f"output's shape {list(shape)}"
            )
        return None
    if grad_output.shape != shape:
        raise InvalidInput(
            f"grad_output has shape {list(grad_output.shape)} but the output of "
            f"{activation.name} has shape {list(shape)}; they must match"
        )
    return grad_output.astype(x.dtype, copy=False)


def _fused(
    activation: Activation, x: Array, g: Array | None, p: Any, chosen: list[str]
) -> dict[str, Array]:
    """value and grad from one compiled float32 pass, when one serves and either is asked for;
    vjp then uses that grad like every other elementwise VJP."""
    if not fused.available(activation, x) or not {"value", "grad", "vjp"} & set(chosen):
        return {}
    if not activation.elementwise:
        value, vjp = fused.value_and_vjp(activation, x, g, p)
        return {"value": value, "vjp": vjp}
    value, grad = fused.value_and_grad(activation, x, p)
    known = {"value": value, "grad": grad}
    if "vjp" in chosen:
        assert g is not None
        known["vjp"] = np.asarray(np.multiply(g, grad))  # an array also for 0-d x
    return known


def _compute(activation: Activation, name: str, x: Array, g: Array | None, p: Any) -> Array:
    if name == "value":
        out = activation.value(x, p)
    elif name == "grad":
        assert activation.derivative is not None
        out = activation.derivative(x, p)
    elif name == "vjp":
        assert g is not None
        out = activation.vjp(x, g, p)
    else:
        out = activation.extras[name].compute(x, g, p)
    # Scalars broadcast (prelu weight) and numpy's 0-d results become arrays of x's dtype.
    return np.asarray(out, dtype=x.dtype)


def _propagate_nan(x: Array, arrays: dict[str, Array]) -> None:
    """NaN in -> NaN out, also where a 0/1 mask or comparison would have dropped it."""
    nan = np.isnan(x)
    if not nan.any():
        return
    for name, out in arrays.items():
        if out.shape == x.shape:
            if not out.flags.writeable:
                arrays[name] = out = out.copy()
            np.copyto(out, x, where=nan)
