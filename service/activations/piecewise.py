# mypy: disable-error-code="no-any-return"
"""Piecewise-linear activations, bit-identical to torch (kinks included), written branch-free.

Branches become clip/minimum/maximum or 0/1 blends ``a*m + b*(1-m)``: multiplying by exactly 0 or 1
and adding 0 are exact, so a blend reproduces torch's ``cond ? a : b`` bit for bit as long as both
sides are finite (infinite sides are clamped first). Data-dependent ``np.where`` is avoided: its
branch mispredicts cost 4-9 ms per million elements.
"""

from __future__ import annotations

import numpy as np

from service.activations.params import Param, Params
from service.activations.registry import Activation, Array, Extra, register
from service.errors import InvalidInput


def mask(condition: Array, like: Array) -> Array:
    return condition.astype(like.dtype)


def relu(x: Array, p: Params) -> Array:
    return np.maximum(x, 0)


def relu_grad(x: Array, p: Params) -> Array:
    return mask(x > 0, x)


def relu6(x: Array, p: Params) -> Array:
    return np.clip(x, 0, 6)


def relu6_grad(x: Array, p: Params) -> Array:
    return mask((x > 0) & (x < 6), x)


def _leaky(x: Array, slope: float) -> Array:
    # max(x, s*x) is x for x>0 and s*x for x<=0 exactly when s <= 1; min when s > 1. With s = 0,
    # inf * 0 would spoil x = +inf: the prelu form keeps it.
    if x.dtype.type(slope) == 0:  # also a slope that rounds to 0 in float32
        return np.maximum(x, 0) + slope * np.minimum(x, 0)
    return np.maximum(x, x * slope) if slope <= 1 else np.minimum(x, x * slope)


def _slope_blend(x: Array, slope: Array | float) -> Array:
    positive = mask(x > 0, x)
    return positive + (1 - positive) * slope


def leaky_relu(x: Array, p: Params) -> Array:
    return _leaky(x, p["negative_slope"])


def leaky_relu_grad(x: Array, p: Params) -> Array:
    return _slope_blend(x, p["negative_slope"])


def _channel_weight(x: Array, weight: Array) -> Array:
    """prelu's weight shaped to broadcast along dim 1 (torch's channel dimension)."""
    w = weight.astype(x.dtype)
    if w.size == 1:
        return w.reshape(())
    return w.reshape((-1,) + (1,) * (x.ndim - 2))


def prelu(x: Array, p: Params) -> Array:
    # max(x,0) + w*min(x,0) is exactly x (x>0) or w*x (x<=0), with no inf*0 at x=+-inf.
    return np.maximum(x, 0) + _channel_weight(x, p["weight"]) * np.minimum(x, 0)


def prelu_grad(x: Array, p: Params) -> Array:
    return _slope_blend(x, _channel_weight(x, p["weight"]))


def prelu_weight_grad(x: Array, g: Array | None, p: Params) -> Array:
    assert g is not None
    contribution = np.minimum(x, 0) * g
    weight = p["weight"]
    if weight.size == 1:
        return contribution.sum(dtype=x.dtype).reshape(weight.shape)
    axes = tuple(i for i in range(x.ndim) if i != 1)
    return contribution.sum(axis=axes, dtype=x.dtype)


def _check_prelu(p: Params, shape: tuple[int, ...]) -> None:
    channels = shape[1] if len(shape) >= 2 else 1
    size = p["weight"].size
    if size not in (1, channels):
        raise InvalidInput(
            f"prelu: weight has {size} elements; it must have 1 or as many as x's channels "
            f"(dimension 1 of x, size {channels})"
        )


def _rrelu_slope(p: Params) -> float:
    return float(p["lower"] + p["upper"]) / 2


def rrelu_prepare(x: Array, p: Params) -> Params:
    if not p["training"]:
        return p
    seed = p["seed"]
    if seed is None:  # drawn here so that it can be echoed and the sample reproduced
        seed = int(np.random.default_rng().integers(2**53))  # exact in every JSON reader
    rng = np.random.default_rng(seed)
    sampled = p["lower"] + (p["upper"] - p["lower"]) * rng.random(x.shape, dtype=x.dtype)
    # torch samples a slope for x <= 0; positive inputs keep slope 1.
    return {**p, "seed": seed, "slopes": _slope_blend(x, sampled)}


def rrelu(x: Array, p: Params) -> Array:
    if p["training"]:
        return x * p["slopes"]
    return _leaky(x, _rrelu_slope(p))


def rrelu_grad(x: Array, p: Params) -> Array:
    if p["training"]:
        return p["slopes"]
    return _slope_blend(x, _rrelu_slope(p))


def _check_rrelu(p: Params) -> None:
    if not p["lower"] <= p["upper"]:
        raise InvalidInput(
            f"rrelu: lower={p['lower']} and upper={p['upper']} are invalid; lower must be <= upper"
        )


def hardtanh(x: Array, p: Params) -> Array:
    return np.clip(x, p["min_val"], p["max_val"])


def hardtanh_grad(x: Array, p: Params) -> Array:
    return mask((x > p["min_val"]) & (x < p["max_val"]), x)


def _check_hardtanh(p: Params) -> None:
    if not p["min_val"] < p["max_val"]:
        raise InvalidInput(
            f"hardtanh: min_val={p['min_val']} and max_val={p['max_val']} are invalid; "
            "min_val must be < max_val"
        )


def float_param(name: str, default: float, doc: str, **rule: object) -> Param:
    return Param(name, "float", doc, default=default, **rule)  # type: ignore[arg-type]


LAMBD_RULE = {"rule": lambda v: v >= 0, "rule_text": "be >= 0"}

register(
    Activation(
        name="relu",
        formula="max(x, 0)",
        value=relu,
        derivative=relu_grad,
        kinks="relu'(0) = 0 (also at -0.0)",
        piecewise_linear=True,
        onnx="Relu",
    )
)
register(
    Activation(
        name="relu6",
        formula="min(max(x, 0), 6)",
        value=relu6,
        derivative=relu6_grad,
        kinks="relu6'(0) = relu6'(6) = 0",
        piecewise_linear=True,
        onnx="Clip(min=0, max=6)",
    )
)
register(
    Activation(
        name="leaky_relu",
        formula="x if x > 0 else negative_slope * x",
        value=leaky_relu,
        derivative=leaky_relu_grad,
        params=(float_param("negative_slope", 0.01, "slope for x <= 0"),),
        kinks="leaky_relu'(0) = negative_slope",
        piecewise_linear=True,
        onnx="LeakyRelu(alpha=negative_slope)",
    )
)
register(
    Activation(
        name="prelu",
        formula="x if x > 0 else weight * x; weight is one number or one per channel (dim 1)",
        value=prelu,
        derivative=prelu_grad,
        params=(
            Param(
                "weight",
                "weight",
                "slopes for x <= 0: 1 element, or x.shape[1] elements applied along dim 1",
                required=True,
            ),
        ),
        kinks="prelu'(0) = weight",
        piecewise_linear=True,
        onnx="PRelu (slope shaped to broadcast along dim 1)",
        check=_check_prelu,
        extras={
            "weight_grad": Extra(
                prelu_weight_grad,
                "gradient of sum(grad_output * prelu(x)) with respect to weight, weight's shape",
                needs_grad_output=True,
            )
        },
    )
)
register(
    Activation(
        name="rrelu",
        formula="x if x > 0 else a * x; eval: a = (lower + upper) / 2; "
        "training: a ~ Uniform(lower, upper) per element, drawn from seed",
        value=rrelu,
        derivative=rrelu_grad,
        params=(
            float_param("lower", 1 / 8, "lower bound of the slope for x <= 0"),
            float_param("upper", 1 / 3, "upper bound of the slope for x <= 0"),
            Param("training", "bool", "sample slopes (true) or use their mean", default=False),
            Param(
                "seed",
                "seed",
                "random seed for training mode; null draws one (echoed in params)",
                default=None,
            ),
        ),
        kinks="rrelu'(0) = the slope for x <= 0 (as leaky_relu)",
        piecewise_linear=True,
        onnx="LeakyRelu(alpha=(lower+upper)/2) in eval mode; no ONNX operator samples slopes",
        cross_check=_check_rrelu,
        prepare=rrelu_prepare,
        extras={
            "slopes": Extra(
                lambda x, g, p: rrelu_grad(x, p),
                "the slope applied to each element (1 where x > 0): sampled in training mode",
            )
        },
    )
)
register(
    Activation(
        name="hardtanh",
        formula="clamp(x, min_val, max_val)",
        value=hardtanh,
        derivative=hardtanh_grad,
        params=(
            float_param("min_val", -1.0, "lower clamp"),
            float_param("max_val", 1.0, "upper clamp (must be > min_val)"),
        ),
        kinks="hardtanh' = 0 at min_val and at max_val",
        piecewise_linear=True,
        onnx="Clip(min=min_val, max=max_val)",
        cross_check=_check_hardtanh,
    )
)
