"""POST /explain and POST /regions: the transport of the network's geometry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from service.api import errors
from service.api.forms import read_form
from service.api.routing import AsgiRoute, Exchange, Reply
from service.api.schemas.geometry import (
    EXPLAIN_BODY,
    REGIONS_BODY,
    ExplainResponse,
    RegionsResponse,
)
from service.api.schemas.predict import JSON, MULTIPART, NPY
from service.classifier.geometry.feature import (
    EXPLAIN_OPTIONS,
    REGIONS_OPTIONS,
    ExplainOptions,
    RegionsOptions,
)
from service.errors import (
    DeadlineExceeded,
    GeometryUnavailable,
    InvalidInput,
    NotReady,
    TooLarge,
    UnsupportedMediaType,
)
from service.runtime import Runtime

_EXPLAIN_QUERY = frozenset(EXPLAIN_OPTIONS)
_REGIONS_QUERY = frozenset(REGIONS_OPTIONS)
PNG = "image/png"


async def explain(options: Annotated[ExplainOptions, Query()]) -> ExplainResponse:
    """The exact local geometry of the network at one image (any /predict body form): its
    label and float64 logits, the affine map logits == weights . x + bias of its activation
    region (in the normalised input space), the activation pattern (ReLU signs and max-pool
    argmaxes; at a max-pool tie the first maximum wins, as in ONNX Runtime and torch), and the
    exact L2 radius of the largest ball around x inside the region. For a model that is not
    piecewise linear (gelu, silu, elu) the weights are the Jacobian and pattern and region are
    null. `format=png` answers a saliency PNG of the predicted class's weights."""
    raise NotImplementedError  # documentation only: AsgiRoute serves the requests with _explain


async def regions(options: Annotated[RegionsOptions, Query()]) -> RegionsResponse:
    """The exact activation regions along the segment x(t) = start + t (end - start), t in
    [0, 1], walked in float64: every t where the activation pattern changes, the linear pieces
    (where the logits' slope changes), the predicted label on each piece and where it changes.
    Bounded by geometry_max_breakpoints (422) and geometry_timeout_ms (504)."""
    raise NotImplementedError  # documentation only: AsgiRoute serves the requests with _regions


async def _explain(exchange: Exchange) -> Any:
    media = exchange.media
    if media in (JSON, NPY):
        body = await exchange.body()
        geometry = exchange.runtime.ready_geometry()
        answer = await geometry.explain_array(
            body, exchange.query(_EXPLAIN_QUERY), npy=media == NPY
        )
    elif media == MULTIPART:
        geometry = exchange.runtime.ready_geometry()
        # two, so that a second file gets the feature's "one image" message, not a limit's
        files, fields = await read_form(exchange, max_files=2)
        answer = await geometry.explain_images(files, fields, exchange.query(_EXPLAIN_QUERY))
    else:
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'!r} is not accepted; send {JSON}, {MULTIPART} "
            f"(one image file) or {NPY}"
        )
    return Reply(answer, PNG) if isinstance(answer, bytes) else answer


async def _regions(exchange: Exchange) -> dict[str, Any]:
    media = exchange.media
    if media not in (JSON, NPY):
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'!r} is not accepted; send {JSON} or {NPY}"
        )
    body = await exchange.body()
    geometry = exchange.runtime.ready_geometry()
    return await geometry.regions_array(body, exchange.query(_REGIONS_QUERY), npy=media == NPY)


_ERRORS = (InvalidInput, UnsupportedMediaType, TooLarge, NotReady, GeometryUnavailable)


def routes(runtime: Runtime) -> list[AsgiRoute]:
    """POST /explain and POST /regions for the app that ``runtime`` serves."""
    explain_responses = errors.responses(*_ERRORS)
    explain_responses[200] = {"content": {PNG: {"schema": {"type": "string", "format": "binary"}}}}
    return [
        AsgiRoute(
            "/explain",
            explain,
            handler=_explain,
            runtime=runtime,
            methods=["POST"],
            tags=["geometry"],
            response_model=ExplainResponse,
            openapi_extra={"requestBody": EXPLAIN_BODY},
            responses=explain_responses,
        ),
        AsgiRoute(
            "/regions",
            regions,
            handler=_regions,
            runtime=runtime,
            methods=["POST"],
            tags=["geometry"],
            response_model=RegionsResponse,
            openapi_extra={"requestBody": REGIONS_BODY},
            responses=errors.responses(*_ERRORS, DeadlineExceeded),
        ),
    ]
