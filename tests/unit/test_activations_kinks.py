"""Every kink value of shared/ACTIVATIONS.md asserted explicitly, and the documented deviations."""

from __future__ import annotations

import numpy as np
import pytest

from service.activations import REGISTRY, evaluate, get_activation

DTYPES = [np.float32, np.float64]
#: alpha * scale rounded once from SELU's exact constants (torch: 1.7580993408473766, the product of
#: the two rounded constants, 1 ULP lower in float64; the same float32).
SELU_GRAD_0 = 1.7580993408473768


def run(name, x, dtype, output="grad", **params):
    activation = get_activation(name)
    arr = np.asarray(x, dtype=dtype)
    return evaluate(activation, arr, activation.validate(params), [output]).arrays[output]


GRADIENTS_AT_KINKS = [
    ("relu", {}, [0.0, -0.0], [0.0, 0.0]),
    ("relu6", {}, [0.0, 6.0], [0.0, 0.0]),
    ("leaky_relu", {}, [0.0], [0.01]),
    ("leaky_relu", {"negative_slope": 0.3}, [0.0, -0.0], [0.3, 0.3]),
    ("prelu", {"weight": 0.25}, [0.0], [0.25]),
    ("rrelu", {}, [0.0], [(1 / 8 + 1 / 3) / 2]),
    ("elu", {}, [0.0], [1.0]),
    ("elu", {"alpha": 2.5}, [0.0], [2.5]),
    ("selu", {}, [0.0], [SELU_GRAD_0]),
    ("celu", {}, [0.0], [1.0]),
    ("celu", {"alpha": 3.0}, [0.0], [1.0]),
    ("hardtanh", {}, [-1.0, 1.0], [0.0, 0.0]),
    ("hardtanh", {"min_val": -2.0, "max_val": 0.5}, [-2.0, 0.5], [0.0, 0.0]),
    ("hardsigmoid", {}, [-3.0, 3.0], [0.0, 0.0]),
    ("hardswish", {}, [-3.0, 3.0, 1.5], [0.0, 1.0, 1.0]),
    ("softshrink", {}, [-0.5, 0.5], [0.0, 0.0]),
    ("hardshrink", {}, [-0.5, 0.5], [0.0, 0.0]),
    ("threshold", {"threshold": 1.0, "value": 7.0}, [1.0], [0.0]),
    ("gelu", {}, [0.0], [0.5]),
    ("gelu", {"approximate": "tanh"}, [0.0], [0.5]),
    ("silu", {}, [0.0], [0.5]),
    ("sigmoid", {}, [0.0], [0.25]),
    ("tanh", {}, [0.0], [1.0]),
    ("softsign", {}, [0.0], [1.0]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "params", "x", "expected"), GRADIENTS_AT_KINKS)
def test_gradient_at_kink(name, params, x, expected, dtype):
    got = run(name, x, dtype, **params)
    np.testing.assert_array_equal(got, np.asarray(expected, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_mish_gradient_at_zero_is_0_6(dtype):
    np.testing.assert_allclose(run("mish", [0.0], dtype), [0.6], rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threshold_value_at_threshold_is_value(dtype):
    got = run("threshold", [1.0, 1.5], dtype, "value", threshold=1.0, value=7.0)
    np.testing.assert_array_equal(got, [7.0, 1.5])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softplus_at_the_threshold_uses_the_log_branch(dtype):
    # beta * x == threshold exactly (2 * 1.5 == 3): log1p(exp(3)) / 2, not the linear 1.5.
    params = {"beta": 2.0, "threshold": 3.0}
    value = run("softplus", [1.5], dtype, "value", **params)[0]
    np.testing.assert_allclose(value, np.log1p(np.exp(3.0)) / 2, rtol=1e-6)
    np.testing.assert_allclose(run("softplus", [1.5], dtype, **params), [1 / (1 + np.exp(-3.0))])
    above = np.nextafter(dtype(1.5), dtype(2))
    assert run("softplus", [above], dtype, "value", **params)[0] == above
    assert run("softplus", [above], dtype, **params)[0] == 1.0


def test_hardsigmoid_float64_gradient_is_exactly_one_sixth():
    # Deviation: torch's float64 gradient is float32's 1/6 = 0.1666666716337204.
    assert run("hardsigmoid", [0.0], np.float64)[0] == 1 / 6
    assert run("hardsigmoid", [0.0], np.float32)[0] == np.float32(1 / 6)


LIMITS = [  # documented deviations: torch gives NaN (inf * 0, inf / inf), we give the limit
    ("gelu", {}, "value", [-np.inf, np.inf], [0.0, np.inf]),
    ("gelu", {}, "grad", [-np.inf, np.inf], [0.0, 1.0]),
    ("gelu", {"approximate": "tanh"}, "value", [-np.inf, np.inf], [0.0, np.inf]),
    ("gelu", {"approximate": "tanh"}, "grad", [-np.inf, np.inf, -1e30, 1e30], [0, 1, 0, 1]),
    ("silu", {}, "value", [-np.inf], [0.0]),
    ("silu", {}, "grad", [-np.inf, np.inf], [0.0, 1.0]),
    ("mish", {}, "value", [-np.inf], [0.0]),
    ("mish", {}, "grad", [-np.inf, np.inf], [0.0, 1.0]),
    ("softsign", {}, "value", [-np.inf, np.inf], [-1.0, 1.0]),
    ("softsign", {}, "grad", [-np.inf, np.inf], [0.0, 0.0]),
    ("hardswish", {}, "value", [-np.inf], [0.0]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "params", "output", "x", "expected"), LIMITS)
def test_limits_where_torch_gives_nan(name, params, output, x, expected, dtype):
    np.testing.assert_array_equal(run(name, x, dtype, output, **params), expected)


IEEE = [  # torch's IEEE results that we follow
    ("relu", "value", np.inf, np.inf),
    ("sigmoid", "value", -np.inf, 0.0),
    ("sigmoid", "grad", -np.inf, 0.0),
    ("elu", "value", -np.inf, -1.0),
    ("logsigmoid", "value", -np.inf, -np.inf),
    ("softplus", "value", np.inf, np.inf),
    ("tanhshrink", "value", np.inf, np.inf),
]


@pytest.mark.parametrize(("name", "output", "x", "expected"), IEEE)
def test_ieee_infinities(name, output, x, expected):
    for dtype in DTYPES:
        assert run(name, [x], dtype, output)[0] == expected


ELEMENTWISE = sorted(n for n, a in REGISTRY.items() if a.elementwise)
REQUIRED = {"prelu": {"weight": 0.5}, "threshold": {"threshold": 0.0, "value": 1.0}}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_nan_in_nan_out_and_dtype_kept(name, dtype):
    activation = get_activation(name)
    x = np.array([np.nan, -1.0, 0.0, 2.0, -np.nan], dtype=dtype)
    g = np.ones_like(x)
    params = activation.validate(REQUIRED.get(name, {}))
    arrays = evaluate(activation, x, params, ["value", "grad", "vjp"], g).arrays
    for output, array in arrays.items():
        assert array.dtype == dtype, output
        assert np.isnan(array[[0, 4]]).all(), f"{name} {output}"
        assert np.isfinite(array[1:4]).all(), f"{name} {output}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_leaky_relu_with_slope_zero_keeps_infinity(dtype):
    # As torch: +inf stays inf, -inf * 0 is NaN (found by the property test).
    for slope in (0.0, 1e-300 if dtype is np.float32 else 0.0):  # 1e-300 is 0 in float32
        got = run("leaky_relu", [np.inf, -np.inf, -2.0], dtype, "value", negative_slope=slope)
        np.testing.assert_array_equal(got, [np.inf, np.nan, -0.0])
