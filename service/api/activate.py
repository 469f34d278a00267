"""POST /activate and GET /activations: activation functions and their gradients on posted arrays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request, Response

from service import tensors
from service.activations import (
    DTYPES,
    REGISTRY,
    Activation,
    Evaluation,
    default_outputs,
    evaluate,
    get_activation,
)
from service.api import offload
from service.api.deps import SettingsDep
from service.api.responses import ORJSON_OPTIONS, OrjsonResponse
from service.api.schemas.activate import (
    ACTIVATE_EXAMPLES,
    ActivateRequest,
    ActivateResponse,
    ActivationInfo,
    ActivationList,
)
from service.api.schemas.health import ErrorDetail
from service.errors import InvalidInput, NotFound, UnsupportedMediaType

router = APIRouter(tags=["activations"])

JSON, NPY, NPZ = "application/json", "application/x-npy", "application/x-npz"
FIELDS = tuple(ActivateRequest.model_fields)
NPY_DTYPES = tuple(DTYPES.values())
TOLERANCE = {
    "float32": "|ours - torch| <= 2e-6 + 1e-5 * |torch|",
    "float64": "|ours - torch| <= 1e-14 + 1e-12 * |torch|",
}

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "A JSON document, or for big arrays the array itself as .npy (numpy.save) "
    "with function, params and outputs as query parameters; .npz (numpy.savez) carries x and "
    "grad_output together.",
    "content": {
        JSON: {"schema": ActivateRequest.model_json_schema(), "examples": ACTIVATE_EXAMPLES},
        NPY: {
            "schema": {"type": "string", "format": "binary", "description": "numpy.save(f, x)"},
            "examples": {"x": {"value": "<bytes of numpy.save(f, x)>"}},
        },
        NPZ: {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "numpy.savez(f, x=x, grad_output=g)",
            }
        },
    },
}


@router.get("/activations", response_model=ActivationList)
async def list_activations() -> OrjsonResponse:
    """Every activation function: formula, parameters (type, default, constraint), gradient
    conventions at kinks, piecewise-linear or smooth, and the matching ONNX operator."""
    entries = {id(a): a for a in REGISTRY.values()}.values()
    return OrjsonResponse({"activations": [a.describe() for a in entries], "tolerance": TOLERANCE})


@router.get(
    "/activations/{name}",
    response_model=ActivationInfo,
    responses={404: {"model": ErrorDetail, "description": "no such function; lists the names"}},
)
async def show_activation(name: str) -> OrjsonResponse:
    """One activation function (an alias such as swish shows its entry)."""
    return OrjsonResponse(get_activation(name).describe())


@router.post(
    "/activate",
    response_model=ActivateResponse,
    openapi_extra={"requestBody": REQUEST_BODY},
    responses={
        200: {
            "content": {
                NPY: {"schema": {"type": "string", "format": "binary"}},
                NPZ: {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "JSON for a JSON request; for a binary request .npy when one output "
            "is asked for, else .npz with one member per output",
        },
        413: {"model": ErrorDetail, "description": "more elements than max_elements"},
        415: {"model": ErrorDetail, "description": "a content type other than JSON/.npy/.npz"},
        422: {"model": ErrorDetail, "description": "bad function, params, array or outputs"},
    },
)
async def activate(
    request: Request,
    settings: SettingsDep,
    function: str | None = Query(None, description="binary bodies: the function name"),
    outputs: str | None = Query(None, description="binary bodies: comma-separated outputs"),
    dtype: str | None = Query(None, description="binary bodies: compute in this dtype"),
) -> Response:
    """Evaluate an activation function, its elementwise derivative and its vector-Jacobian
    product on an array, matching PyTorch (bit for bit for piecewise-linear functions). Any
    other query parameter of a binary request is a parameter of the function."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    limit = settings.max_elements
    if media == JSON:
        if request.query_params:
            raise InvalidInput(
                "query parameters are for .npy bodies; put function, params and outputs in "
                "the JSON body"
            )
        content = await offload.by_size(len(body), _from_json, body, limit)
        return Response(content, media_type=JSON)
    if media in (NPY, NPZ):
        query = _query_params(request, exclude=("function", "outputs", "dtype"))
        return await offload.by_size(
            len(body), _from_binary, body, media, function, outputs, dtype, query, limit
        )
    raise UnsupportedMediaType(
        f"Content-Type {media or '(none)'!r} is not accepted; send {JSON}, {NPY} (the array "
        f"x) or {NPZ} (x and grad_output)"
    )


def _lookup(function: Any) -> Activation:
    if not isinstance(function, str):
        raise InvalidInput(f"function must be a name from GET /activations, got {function!r}")
    try:
        return get_activation(function)
    except NotFound as exc:  # a bad value in the body, not a missing resource
        raise InvalidInput(exc.message) from None


def _dtype(name: Any) -> np.dtype[Any]:
    if name not in DTYPES:
        raise InvalidInput(f"dtype {name!r} is not supported; use one of {', '.join(DTYPES)}")
    return DTYPES[name]


def _outputs(value: Any, activation: Activation, *, grad_output: bool) -> list[str]:
    if value is None:
        return default_outputs(activation, grad_output=grad_output)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(
            f'outputs must be a list of names such as ["value", "grad"], got {value!r}'
        )
    return value


def _from_json(body: bytes, limit: int) -> bytes:
    document = tensors.parse_json(body)
    if not isinstance(document, dict):
        raise InvalidInput('the JSON body must be an object: {"function": "relu", "x": [...]}')
    unknown = sorted(set(document) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}; allowed: {', '.join(FIELDS)}")
    for field in ("function", "x"):
        if field not in document:
            raise InvalidInput(f"{field} is required; the body needs at least function and x")
    activation = _lookup(document["function"])
    params = document.get("params")
    if params is not None and not isinstance(params, dict):
        raise InvalidInput(f"params must be an object of parameter names, got {params!r}")
    validated = activation.validate(params)
    dtype = _dtype(document.get("dtype", "float32"))
    raw_g = document.get("grad_output")
    outputs = _outputs(document.get("outputs"), activation, grad_output=raw_g is not None)
    booleans = tensors.json_may_hold_booleans(body)
    x = tensors.array_from_json(
        document["x"], dtype=dtype, max_elements=limit, name="x", may_hold_booleans=booleans
    )
    g = None
    if raw_g is not None:
        g = tensors.array_from_json(
            raw_g, dtype=dtype, max_elements=limit, name="grad_output", may_hold_booleans=booleans
        )
    result = evaluate(activation, x, validated, outputs, g)
    payload = {
        "function": document["function"],
        "params": {
            key: _json_array(value) if isinstance(value, np.ndarray) else value
            for key, value in result.params.items()
        },
        "shape": list(x.shape),
        "dtype": dtype.name,
        **{name: _json_array(array) for name, array in result.arrays.items()},
    }
    return orjson.dumps(payload, option=ORJSON_OPTIONS)


def _json_array(array: np.ndarray[Any, Any]) -> Any:
    # orjson serialises C-contiguous arrays natively; a 0-d array goes as its scalar.
    return array[()] if array.ndim == 0 else np.ascontiguousarray(array)


def _query_params(request: Request, *, exclude: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in exclude:
            continue
        if key in params:
            raise InvalidInput(f"query parameter {key!r} is given twice")
        try:  # numbers, booleans and lists as JSON; anything else (approximate=tanh) as text
            params[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            params[key] = value
    return params


def _from_binary(
    body: bytes,
    media: str,
    function: str | None,
    outputs: str | None,
    dtype: str | None,
    query: Mapping[str, Any],
    limit: int,
) -> Response:
    if function is None:
        raise InvalidInput(
            "function is required as a query parameter with a binary body, "
            "e.g. POST /activate?function=relu"
        )
    activation = _lookup(function)
    validated = activation.validate(query)
    if media == NPY:
        x = tensors.load_npy(body, max_elements=limit, allowed_dtypes=NPY_DTYPES)
        g = None
    else:
        arrays = tensors.load_npz(
            body, max_elements=limit, allowed_dtypes=NPY_DTYPES, names=("x", "grad_output")
        )
        if "x" not in arrays:
            raise InvalidInput("the .npz body has no member x.npy; write numpy.savez(f, x=x, ...)")
        x, g = arrays["x"], arrays.get("grad_output")
    if dtype is not None:
        x = x.astype(_dtype(dtype), copy=False)
    names = _outputs(outputs.split(",") if outputs else None, activation, grad_output=g is not None)
    result = evaluate(activation, x, validated, names, g)
    return _binary_response(function, result)


def _binary_response(function: str, result: Evaluation) -> Response:
    scalars = {k: v for k, v in result.params.items() if not isinstance(v, np.ndarray)}
    headers = {
        "X-Activation-Function": function,
        "X-Activation-Params": orjson.dumps(scalars).decode(),
        "X-Activation-Outputs": ",".join(result.arrays),
    }
    if len(result.arrays) == 1:
        (array,) = result.arrays.values()
        return Response(tensors.dump_npy(array), media_type=NPY, headers=headers)
    return Response(tensors.dump_npz(result.arrays), media_type=NPZ, headers=headers)
