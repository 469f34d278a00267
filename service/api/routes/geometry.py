"""POST /explain, /regions and /regions/plane: the transport of the network's geometry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Response

from service.api import errors
from service.api.forms import read_form
from service.api.routing import AsgiRoute, Exchange, Reply
from service.api.schemas.geometry import (
    EXPLAIN_BODY,
    PLANE_BODY,
    REGIONS_BODY,
    ExplainResponse,
    RegionsResponse,
)
from service.api.schemas.predict import JSON, MULTIPART, NPY
from service.classifier.geometry.feature import (
    EXPLAIN_OPTIONS,
    PLANE_OPTIONS,
    REGIONS_OPTIONS,
    ExplainOptions,
    PlaneOptions,
    RegionsOptions,
)
from service.errors import (
    DeadlineExceeded,
    GeometryUnavailable,
    InvalidInput,
    NotReady,
    TooLarge,
    UnsupportedMediaType,
    excerpt,
)
from service.runtime import Runtime

_EXPLAIN_QUERY = frozenset(EXPLAIN_OPTIONS)
_REGIONS_QUERY = frozenset(REGIONS_OPTIONS)
_PLANE_QUERY = frozenset(PLANE_OPTIONS)
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


async def plane(options: Annotated[PlaneOptions, Query()]) -> None:
    """A PNG of the activation regions over the plane x(u, v) = a + u (b - a) + v (c - a) of
    three images, u and v in [0, 1] (a top left, b top right, c bottom left): each region a
    colour, region edges grey, the decision boundary black. SAMPLED on a grid x grid lattice,
    not exact: regions thinner than a cell are missed (the header X-Regions-Sampled says so,
    X-Regions-Seen counts the regions found). Bounded by geometry_timeout_ms (504)."""
    raise NotImplementedError  # documentation only: AsgiRoute serves the requests with _plane


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
            f"Content-Type {excerpt(media) if media else '(none)'} is not accepted; send {JSON}, {MULTIPART} "
            f"(one image file) or {NPY}"
        )
    return Reply(answer, PNG) if isinstance(answer, bytes) else answer


async def _regions(exchange: Exchange) -> dict[str, Any]:
    media = exchange.media
    if media not in (JSON, NPY):
        raise UnsupportedMediaType(
            f"Content-Type {excerpt(media) if media else '(none)'} is not accepted; send {JSON} or {NPY}"
        )
    body = await exchange.body()
    geometry = exchange.runtime.ready_geometry()
    return await geometry.regions_array(body, exchange.query(_REGIONS_QUERY), npy=media == NPY)


async def _plane(exchange: Exchange) -> Reply:
    media = exchange.media
    if media not in (JSON, NPY):
        raise UnsupportedMediaType(
            f"Content-Type {excerpt(media) if media else '(none)'} is not accepted; send {JSON} or {NPY}"
        )
    body = await exchange.body()
    geometry = exchange.runtime.ready_geometry()
    png, info = await geometry.plane_array(body, exchange.query(_PLANE_QUERY), npy=media == NPY)
    return Reply(png, PNG, info)


_ERRORS = (InvalidInput, UnsupportedMediaType, TooLarge, NotReady, GeometryUnavailable)


def routes(runtime: Runtime) -> list[AsgiRoute]:
    """POST /explain, /regions and /regions/plane for the app that ``runtime`` serves."""
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
        AsgiRoute(
            "/regions/plane",
            plane,
            handler=_plane,
            runtime=runtime,
            methods=["POST"],
            tags=["geometry"],
            response_class=Response,  # a PNG, not JSON
            openapi_extra={"requestBody": PLANE_BODY},
            responses={
                200: {"content": {PNG: {"schema": {"type": "string", "format": "binary"}}}},
                **errors.responses(*_ERRORS, DeadlineExceeded),
            },
        ),
    ]
