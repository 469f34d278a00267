"""The torch reference for the activation tests: torch.nn.functional with autograd, and comparisons
that apply the contract of shared/ACTIVATIONS.md (bit-identical or within tolerance)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from service.activations import evaluate, get_activation

#: |ours - torch| <= ATOL + RTOL * |torch| for smooth functions, value and gradient.
TOLERANCE = {np.float32: (2e-6, 1e-5), np.float64: (1e-14, 1e-12)}

TORCH = {
    "relu": lambda x, p: F.relu(x),
    "relu6": lambda x, p: F.relu6(x),
    "leaky_relu": lambda x, p: F.leaky_relu(x, p["negative_slope"]),
    "prelu": lambda x, p: F.prelu(x, p["weight_t"]),
    "rrelu": lambda x, p: F.rrelu(x, p["lower"], p["upper"], training=False),
    "elu": lambda x, p: F.elu(x, p["alpha"]),
    "selu": lambda x, p: F.selu(x),
    "celu": lambda x, p: F.celu(x, p["alpha"]),
    "gelu": lambda x, p: F.gelu(x, approximate=p["approximate"]),
    "silu": lambda x, p: F.silu(x),
    "swish": lambda x, p: F.silu(x),
    "mish": lambda x, p: F.mish(x),
    "sigmoid": lambda x, p: torch.sigmoid(x),
    "tanh": lambda x, p: torch.tanh(x),
    "softsign": lambda x, p: F.softsign(x),
    "logsigmoid": lambda x, p: F.logsigmoid(x),
    "tanhshrink": lambda x, p: F.tanhshrink(x),
    "softplus": lambda x, p: F.softplus(x, p["beta"], p["threshold"]),
    "hardtanh": lambda x, p: F.hardtanh(x, p["min_val"], p["max_val"]),
    "hardsigmoid": lambda x, p: F.hardsigmoid(x),
    "hardswish": lambda x, p: F.hardswish(x),
    "softshrink": lambda x, p: F.softshrink(x, p["lambd"]),
    "hardshrink": lambda x, p: F.hardshrink(x, p["lambd"]),
    "threshold": lambda x, p: F.threshold(x, p["threshold"], p["value"]),
    "softmax": lambda x, p: F.softmax(x, dim=p["dim"]),
    "log_softmax": lambda x, p: F.log_softmax(x, dim=p["dim"]),
    "glu": lambda x, p: F.glu(x, dim=p["dim"]),
}


def torch_outputs(name: str, x: np.ndarray, params: dict[str, Any], g: np.ndarray) -> dict:
    """value, grad (elementwise only: backward of ones), vjp and prelu's weight_grad from torch."""
    xt = torch.tensor(x, requires_grad=True)
    p = dict(params)
    inputs = [xt]
    if name == "prelu":
        p["weight_t"] = torch.tensor(
            params["weight"].reshape(-1), dtype=xt.dtype, requires_grad=True
        )
        inputs.append(p["weight_t"])
    y = TORCH[name](xt, p)
    out = {"value": y.detach().numpy()}
    if get_activation(name).elementwise:
        (grad,) = torch.autograd.grad(y, xt, torch.ones_like(y), retain_graph=True)
        out["grad"] = grad.numpy()
    grads = torch.autograd.grad(y, inputs, torch.tensor(g))
    out["vjp"] = grads[0].numpy()
    if name == "prelu":
        out["weight_grad"] = grads[1].numpy().reshape(params["weight"].shape)
    return out


def ours(name: str, x: np.ndarray, params: dict[str, Any], g: np.ndarray) -> dict:
    activation = get_activation(name)
    p = activation.validate(params)
    return evaluate(activation, x, p, activation.outputs, g).arrays


def glu_vjp_truth(x: np.ndarray, g: np.ndarray, dim: int) -> np.ndarray:
    """glu's VJP in long double with the stable sigmoid' (torch's s * (1 - s) cancels for b > 8)."""
    a, b = np.split(x.astype(np.longdouble), 2, axis=dim)
    g = g.astype(np.longdouble)
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(b))
        s = 1 / (1 + np.exp(-b))
        return np.concatenate([g * s, (g * (e / (1 + e) ** 2)) * a], axis=dim)


def celu_grad_truth(x: np.ndarray, alpha: float) -> np.ndarray:
    """celu' in long double (torch's float64 backward rounds its alpha coefficients to float32)."""
    xl = x.astype(np.longdouble)
    with np.errstate(all="ignore"):
        return np.where(xl > 0, 1, np.exp(np.minimum(xl, 0) / np.longdouble(alpha)))


def truth_for(name: str, output: str, x: np.ndarray, g: np.ndarray, p: dict) -> np.ndarray | None:
    if (name, output) == ("glu", "vjp"):
        return glu_vjp_truth(x, g, p["dim"])
    if name == "celu" and output in ("grad", "vjp"):
        d = celu_grad_truth(x, p["alpha"])
        return d if output == "grad" else d * g.astype(np.longdouble)
    return None


def assert_contract(
    ours_out: np.ndarray,
    ref: np.ndarray,
    x: np.ndarray,
    *,
    exact: bool,
    what: str,
    truth: np.ndarray | None = None,
    elementwise: bool = True,
) -> None:
    """NaN in -> NaN out; torch's NaN at +-inf may be replaced by the limit; else bits or tolerance.

    Where torch is inaccurate, ``truth`` (higher precision) may vouch for ours instead.
    """
    assert ours_out.dtype == x.dtype, f"{what}: dtype {ours_out.dtype} for {x.dtype} input"
    assert ours_out.shape == ref.shape, what
    o, r = ours_out.ravel(), ref.ravel()
    t = None if truth is None else truth.astype(np.float64).ravel()
    if elementwise and ours_out.shape == x.shape:
        xs = x.ravel()
        assert np.isnan(o[np.isnan(xs)]).all(), f"{what}: NaN in must give NaN out"
        # Where torch's NaN comes from inf * 0 (at +-inf, or where x**3 overflows), ours is the limit.
        deviation = np.isnan(r) & ~np.isnan(o) & ~np.isnan(xs)
        huge = np.abs(xs[deviation]) >= 1e12
        assert huge.all(), f"{what}: ours not NaN where torch is, x={xs[deviation]}"
        # torch's intermediate x * (1 + erf) overflows at float32's max; ours stays finite.
        overflow = np.isinf(r) & np.isfinite(xs) & np.isfinite(o)
        assert (np.abs(o[overflow]) > np.finfo(x.dtype).max / 4).all(), what
        keep = ~(np.isnan(xs) | deviation | overflow)
        o, r = o[keep], r[keep]
        t = None if t is None else t[keep]
    if exact:
        np.testing.assert_array_equal(o, r, err_msg=what)
        return
    atol, rtol = TOLERANCE[x.dtype.type]
    if t is not None:
        with np.errstate(all="ignore"):
            off = ~(np.abs(o - r) <= atol + rtol * np.abs(r)) & np.isfinite(r)
        np.testing.assert_allclose(o[off], t[off], rtol=rtol, atol=atol, err_msg=what)
        o, r = o[~off], r[~off]
    np.testing.assert_allclose(o, r, rtol=rtol, atol=atol, err_msg=what)


def compare(name: str, x: np.ndarray, params: dict[str, Any], *, seed: int = 0) -> None:
    """Every output of ``name`` at ``x`` against torch, under the contract."""
    activation = get_activation(name)
    validated = activation.validate(params)
    shape = activation.shape_out(x.shape, validated)
    g = np.random.default_rng(seed).uniform(-2, 2, size=shape).astype(x.dtype)
    mine = ours(name, x, params, g)
    ref = torch_outputs(name, x, validated, g)
    exact = activation.piecewise_linear
    for output, expected in ref.items():
        if name == "hardsigmoid" and output != "value" and x.dtype == np.float64:
            # Documented deviation: torch's float64 gradient uses float32's 1/6.
            expected = expected / float(np.float32(1 / 6)) * (1 / 6)
            exact = False
        what = f"{name}{params} {output} {x.dtype}"
        truth = truth_for(name, output, x, g, validated)
        exact = exact and output != "weight_grad"
        assert_contract(
            mine[output],
            expected,
            x,
            exact=exact,
            what=what,
            truth=truth,
            elementwise=activation.elementwise,
        )
