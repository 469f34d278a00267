"""The /activate request without a transport: one validated envelope -> evaluate -> outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic_core import ErrorDetails

from service.activations.evaluate import DTYPES, Evaluation, default_outputs, evaluate
from service.activations.registry import Activation, get_activation
from service.codecs import Body, json_arrays, npy
from service.errors import InvalidInput, NotFound, excerpt

ARRAY = "a number or nested lists of numbers (rank 0..8); NaN and Infinity are not JSON"
OUTPUT_NAMES = ["value", "grad", "vjp", "weight_grad", "slopes"]
NPY_DTYPES = tuple(DTYPES.values())

ACTIVATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "leaky_relu value and grad": {
        "value": {
            "function": "leaky_relu",
            "params": {"negative_slope": 0.1},
            "x": [[-2.0, -0.5, 0.0], [0.5, 1.0, 2.0]],
            "outputs": ["value", "grad"],
        }
    },
    "gelu with an upstream gradient (VJP)": {
        "value": {
            "function": "gelu",
            "x": [-1.0, 0.0, 1.0],
            "dtype": "float64",
            "outputs": ["value", "vjp"],
            "grad_output": [1.0, 1.0, 0.5],
        }
    },
    "softmax along dim 1": {
        "value": {"function": "softmax", "params": {"dim": 1}, "x": [[1.0, 2.0, 3.0]]}
    },
}


class ActivateRequest(BaseModel):
    """The body of POST /activate (a JSON document, or the query of a .npy/.npz request)."""

    model_config = ConfigDict(extra="forbid")

    function: str = Field(description="a name from GET /activations (swish = silu)")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="torch's parameter names; omitted ones take torch's defaults",
    )
    x: Any = Field(description=ARRAY)
    dtype: Literal["float32", "float64"] | None = Field(
        None,
        description="the precision of the computation (float32 in, float32 math); default "
        "float32 for JSON, the array's own dtype for .npy/.npz",
    )
    outputs: Annotated[
        list[str] | None,
        WithJsonSchema({"type": "array", "items": {"enum": OUTPUT_NAMES}}),
    ] = Field(
        None,
        description="default: value, grad (elementwise functions only) and vjp when grad_output "
        "is given. weight_grad is prelu's, slopes rrelu's",
    )
    grad_output: Any | None = Field(
        None, description="the upstream gradient for vjp, shaped like the output; " + ARRAY
    )


FIELDS = tuple(ActivateRequest.model_fields)


def from_json(body: Body, max_elements: int) -> bytes:
    """A JSON request body -> the JSON answer: the outputs as (nested) arrays."""
    json_arrays.check_values(body, 2 * max_elements)  # x and grad_output
    document = json_arrays.parse_json(body)
    if not isinstance(document, dict):
        raise InvalidInput('the JSON body must be an object: {"function": "relu", "x": [...]}')
    request = _validate(document)
    activation = _lookup(request.function)
    validated = activation.validate(request.params)
    dtype = DTYPES[request.dtype or "float32"]
    outputs = request.outputs or default_outputs(
        activation, grad_output=request.grad_output is not None
    )
    booleans = json_arrays.json_may_hold_booleans(body)

    def array(value: Any, name: str) -> np.ndarray[Any, Any]:
        return json_arrays.array_from_json(
            value, dtype=dtype, max_elements=max_elements, name=name, may_hold_booleans=booleans
        )

    x = array(request.x, "x")
    g = None if request.grad_output is None else array(request.grad_output, "grad_output")
    result = evaluate(activation, x, validated, outputs, g)
    payload = {
        "function": request.function,
        "params": {key: _json_value(value) for key, value in result.params.items()},
        "shape": list(x.shape),
        "dtype": dtype.name,
        **{name: _json_value(array) for name, array in result.arrays.items()},
    }
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


def from_binary(
    body: Body, *, npz: bool, query: Mapping[str, str], max_elements: int
) -> Evaluation:
    """A .npy body (x) or .npz body (x, grad_output) with function, outputs, dtype and the
    function's parameters as query parameters -> the evaluation."""
    if "function" not in query:
        raise InvalidInput(
            "function is required as a query parameter with a binary body, "
            "e.g. POST /activate?function=relu"
        )
    params = {k: _query_value(v) for k, v in query.items() if k not in FIELDS}
    outputs = query.get("outputs")
    request = _validate(
        {
            "function": query["function"],
            "params": params,
            "x": None,
            "outputs": outputs.split(",") if outputs else None,
            **({"dtype": query["dtype"]} if "dtype" in query else {}),
        }
    )
    activation = _lookup(request.function)
    validated = activation.validate(request.params)
    x, g = _arrays(body, npz, max_elements)
    if request.dtype is not None:
        x = x.astype(DTYPES[request.dtype], copy=False)
    names = request.outputs or default_outputs(activation, grad_output=g is not None)
    return evaluate(activation, x, validated, names, g)


def _arrays(
    body: Body, npz: bool, max_elements: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    if not npz:
        return npy.load_npy(body, max_elements=max_elements, allowed_dtypes=NPY_DTYPES), None
    arrays = npy.load_npz(
        body, max_elements=max_elements, allowed_dtypes=NPY_DTYPES, names=("x", "grad_output")
    )
    if "x" not in arrays:
        raise InvalidInput("the .npz body has no member x.npy; write numpy.savez(f, x=x, ...)")
    return arrays["x"], arrays.get("grad_output")


def _validate(document: dict[str, Any]) -> ActivateRequest:
    try:
        return ActivateRequest.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(_describe(exc.errors(), document)) from None


def _describe(errors: list[ErrorDetails], document: dict[str, Any]) -> str:
    """The most useful of pydantic's errors, worded to say what to fix."""
    order = {"extra_forbidden": 0, "missing": 1}
    error = min(errors, key=lambda e: order.get(e["type"], 2))
    field = str(error["loc"][0])
    given = document.get(field)
    if error["type"] == "extra_forbidden":
        return f"unknown field {excerpt(field)}; allowed: {', '.join(FIELDS)}"
    if error["type"] == "missing":
        return f"{field} is required; the body needs at least function and x"
    if field == "function":
        return f"function must be a name from GET /activations, got {excerpt(given)}"
    if field == "params":
        return f"params must be an object of parameter names, got {excerpt(given)}"
    if field == "dtype":
        return f"dtype {excerpt(given)} is not supported; use one of {', '.join(DTYPES)}"
    return f'outputs must be a list of names such as ["value", "grad"], got {excerpt(given)}'


def _lookup(function: str) -> Activation:
    try:
        return get_activation(function)
    except NotFound as exc:  # a bad value in the body, not a missing resource
        raise InvalidInput(exc.message) from None


def _query_value(value: str) -> Any:
    try:  # numbers, booleans and lists as JSON; anything else (approximate=tanh) as text
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def _json_value(value: Any) -> Any:
    if not isinstance(value, np.ndarray):
        return value
    # orjson serialises C-contiguous arrays natively; a 0-d array goes as its scalar.
    return value[()] if value.ndim == 0 else np.ascontiguousarray(value)
