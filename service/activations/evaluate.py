"""evaluate: one activation on one array, the requested outputs, NaN in -> NaN out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.activations import fused
from service.activations.registry import Activation, Array
from service.errors import InvalidInput, excerpt

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
                f"unknown output {excerpt(name)} for {activation.name}; "
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
        if _chunkable(activation, chosen, x, p):
            arrays = _in_chunks(activation, chosen, x, g, p)
        else:
            arrays = _outputs(activation, chosen, x, g, p, {})
        if activation.elementwise and not _one_pass(activation, chosen, x, p):
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


def _outputs(
    activation: Activation,
    chosen: list[str],
    x: Array,
    g: Array | None,
    p: Any,
    into: dict[str, Array],
) -> dict[str, Array]:
    """The chosen outputs at ``x``; those named in ``into`` (flat, x's size) are written there
    (the compiled kernels write straight into them)."""
    known = _fused(activation, x, g, p, chosen, into)
    arrays = {}
    for name in chosen:
        if name in known:
            arrays[name] = known[name]
            continue
        arrays[name] = out = _compute(activation, name, x, g, p)
        if name in into:
            into[name][...] = out.reshape(-1)
    return arrays


def _fused(
    activation: Activation,
    x: Array,
    g: Array | None,
    p: Any,
    chosen: list[str],
    into: dict[str, Array],
) -> dict[str, Array]:
    """value and grad from one compiled pass, when one serves and either is asked for;
    vjp then uses that grad like every other elementwise VJP."""
    if not fused.available(activation, x, p) or not {"value", "grad", "vjp"} & set(chosen):
        return {}
    if not activation.elementwise:
        value, vjp = fused.value_and_vjp(activation, x, g, p)
        return {"value": value, "vjp": vjp}
    value, grad = fused.value_and_grad(activation, x, p, into.get("value"), into.get("grad"))
    known = {"value": value, "grad": grad}
    if "vjp" in chosen:
        assert g is not None
        vjp = into["vjp"] if "vjp" in into else np.empty_like(grad)
        known["vjp"] = np.multiply(g, grad, out=vjp.reshape(grad.shape))
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


#: Elements per piece when a big array is computed piece by piece: each kernel's temporaries
#: then take a few MiB instead of several times the array (gelu's float64 erfc form holds ~3
#: arrays' worth at once: 128 MiB in, ~400 MiB of temporaries unchunked).
CHUNK = 1 << 18


def _chunkable(activation: Activation, chosen: list[str], x: Array, p: Any) -> bool:
    """Big input, elementwise function, scalar parameters only: then any flat piece of x maps
    to the same piece of each output (a per-channel prelu weight would not). Not when one
    compiled pass makes every output: it needs no temporaries, and whole it is faster (gelu at
    1e6: 2.18 ms, against 2.34 ms in pieces)."""
    if x.size <= CHUNK or not activation.elementwise or _one_pass(activation, chosen, x, p):
        return False
    return not any(isinstance(v, np.ndarray) and v.ndim > 0 for v in dict(p).values())


def _one_pass(activation: Activation, chosen: list[str], x: Array, p: Any) -> bool:
    """Every chosen output comes from one compiled pass. Those kernels map NaN to NaN in value
    and f' themselves (tests/unit/test_activations_compiled.py), so evaluate's NaN check, one
    more pass over x (0.14 ms per 1e6 float32), is skipped for them."""
    return fused.available(activation, x, p) and set(chosen) <= {"value", "grad", "vjp"}


def _in_chunks(
    activation: Activation, chosen: list[str], x: Array, g: Array | None, p: Any
) -> dict[str, Array]:
    """The outputs computed CHUNK elements at a time into arrays allocated once."""
    flat_x = x.reshape(-1)
    flat_g = None if g is None else g.reshape(-1)
    arrays = {name: np.empty(x.shape, dtype=x.dtype) for name in chosen}
    flats = {name: out.reshape(-1) for name, out in arrays.items()}
    for start in range(0, flat_x.size, CHUNK):
        piece = slice(start, start + CHUNK)
        g_piece = None if flat_g is None else flat_g[piece]
        into = {name: flat[piece] for name, flat in flats.items()}
        _outputs(activation, chosen, flat_x[piece], g_piece, p, into)
    return arrays


def _propagate_nan(x: Array, arrays: dict[str, Array]) -> None:
    """NaN in -> NaN out, also where a 0/1 mask or comparison would have dropped it."""
    if x.size == 0 or not np.isnan(np.max(x)):  # max propagates NaN: 0.14 ms at 1e6, no mask
        return
    nan = np.isnan(x)
    for name, out in arrays.items():
        if out.shape == x.shape:
            if not out.flags.writeable:
                arrays[name] = out = out.copy()
            np.copyto(out, x, where=nan)
