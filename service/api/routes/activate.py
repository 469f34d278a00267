"""POST /activate and GET /activations: the transport of the activation functions."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query

from service import offload
from service.activations import REGISTRY, get_activation, request
from service.activations.evaluate import Evaluation
from service.api import errors
from service.api.exchange import Exchange
from service.api.responses import OrjsonResponse
from service.api.routing import AsgiRoute, Reply
from service.api.schemas.activate import ActivateResponse, ActivationInfo, ActivationList
from service.codecs import Body, npy
from service.errors import InvalidInput, NotFound, TooLarge, UnsupportedMediaType, excerpt
from service.runtime import Runtime

router = APIRouter(tags=["activations"])

JSON, NPY, NPZ = "application/json", "application/x-npy", "application/x-npz"
TOLERANCE = {
    "float32": "|ours - torch| <= 2e-6 + 1e-5 * |torch|",
    "float64": "|ours - torch| <= 1e-14 + 1e-12 * |torch|",
}


def _request_schema() -> dict[str, Any]:
    """ActivateRequest's schema, with the function names and the arrays spelled out."""
    schema = request.ActivateRequest.model_json_schema()
    properties = schema["properties"]
    properties["function"]["enum"] = sorted(REGISTRY)
    properties["x"] = {**_ARRAY, "description": properties["x"]["description"]}
    properties["grad_output"] = {
        "anyOf": [_ARRAY, {"type": "null"}],
        "description": properties["grad_output"]["description"],
    }
    return schema


_ARRAY: dict[str, Any] = {
    "anyOf": [
        {"type": "number"},
        {"type": "array", "items": {"type": "number"}},
        {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        {
            "type": "array",
            "items": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        },
    ]
}

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "A JSON document, or for big arrays the array itself as .npy (numpy.save) "
    "with function, params and outputs as query parameters; .npz (numpy.savez) carries x and "
    "grad_output together.",
    "content": {
        JSON: {
            "schema": _request_schema(),
            "examples": request.ACTIVATE_EXAMPLES,
        },
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
    "/activations/{name}", response_model=ActivationInfo, responses=errors.responses(NotFound)
)
async def show_activation(
    name: Annotated[str, Path(json_schema_extra={"enum": sorted(REGISTRY)})],
) -> OrjsonResponse:
    """One activation function (an alias such as swish shows its entry)."""
    return OrjsonResponse(get_activation(name).describe())


async def activate(
    function: Annotated[str | None, Query(description="binary bodies: the function name")] = None,
    outputs: Annotated[
        str | None, Query(description="binary bodies: comma-separated outputs")
    ] = None,
    dtype: Annotated[str | None, Query(description="binary bodies: compute in this dtype")] = None,
) -> ActivateResponse:
    """Evaluate an activation function, its elementwise derivative and its vector-Jacobian
    product on an array, matching PyTorch (bit for bit for piecewise-linear functions). Any
    other query parameter of a binary request is a parameter of the function."""
    raise NotImplementedError  # documentation only: AsgiRoute serves the requests with _serve


async def _serve(exchange: Exchange) -> Reply:
    media = exchange.media
    settings = exchange.runtime.settings
    limit, deadline_s = settings.max_elements, settings.request_timeout_ms / 1000
    if media == JSON:
        if exchange.query_items():
            raise InvalidInput(
                "query parameters are for .npy bodies; put function, params and outputs in "
                "the JSON body"
            )
        body = await exchange.body()
        return Reply(
            await offload.by_size(len(body), deadline_s, request.from_json, body, limit), JSON
        )
    if media in (NPY, NPZ):
        query = _unique_query(exchange)
        body = await exchange.body()
        return await offload.by_size(
            len(body) if media == NPY else offload.INLINE_BODY_BYTES + 1,  # .npz inflates
            deadline_s,
            _binary,
            body,
            npz=media == NPZ,
            query=query,
            max_elements=limit,
        )
    raise UnsupportedMediaType(
        f"Content-Type {excerpt(media) if media else '(none)'} is not accepted; send {JSON}, {NPY} (the array "
        f"x) or {NPZ} (x and grad_output)"
    )


def _unique_query(exchange: Exchange) -> dict[str, str]:
    query: dict[str, str] = {}
    for key, value in exchange.query_items():
        if key in query:
            raise InvalidInput(f"query parameter {excerpt(key)} is given twice")
        query[key] = value
    return query


def _binary(body: Body, *, npz: bool, query: dict[str, str], max_elements: int) -> Reply:
    result = request.from_binary(body, npz=npz, query=query, max_elements=max_elements)
    return _binary_reply(query["function"], result)


def _binary_reply(function: str, result: Evaluation) -> Reply:
    """One output as .npy, several as .npz; the function and params in headers."""
    scalars = {k: v for k, v in result.params.items() if not hasattr(v, "shape")}
    headers = {
        "X-Activation-Function": function,
        "X-Activation-Params": orjson.dumps(scalars).decode(),
        "X-Activation-Outputs": ",".join(result.arrays),
    }
    if len(result.arrays) == 1:
        (array,) = result.arrays.values()
        return Reply(npy.npy_parts(array), NPY, headers)
    return Reply(npy.npz_parts(result.arrays), NPZ, headers)


def route(runtime: Runtime) -> AsgiRoute:
    """POST /activate for the app that ``runtime`` serves."""
    return AsgiRoute(
        "/activate",
        activate,
        handler=_serve,
        runtime=runtime,
        methods=["POST"],
        tags=["activations"],
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
            **errors.responses(InvalidInput, UnsupportedMediaType, TooLarge),
        },
    )
