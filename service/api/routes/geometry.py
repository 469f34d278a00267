"""POST /explain, /regions and /regions/plane: the transport of the network's geometry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Response

from service.api import errors
from service.api.exchange import Exchange
from service.api.forms import read_form
from service.api.routing import AsgiRoute, Reply
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


#: The 200 of an answer that may be a PNG.
_PNG_ANSWER = {"content": {PNG: {"schema": {"type": "string", "format": "binary"}}}}


def routes(runtime: Runtime) -> list[AsgiRoute]:
    """POST /explain, /regions and /regions/plane for the app that ``runtime`` serves."""

    def route(path: str, doc: Any, handler: Any, body: Any, **kwargs: Any) -> AsgiRoute:
        return AsgiRoute(
            path,
            doc,
            handler=handler,
            runtime=runtime,
            methods=["POST"],
            tags=["geometry"],
            openapi_extra={"requestBody": body},
            **kwargs,
        )

    # Each runs in a worker thread within the request deadline (504); /regions also within
    # geometry_timeout_ms.
    walked = errors.responses(*_ERRORS, DeadlineExceeded)
    return [
        route(
            "/explain",
            explain,
            _explain,
            EXPLAIN_BODY,
            response_model=ExplainResponse,
            responses={**walked, 200: _PNG_ANSWER},
        ),
        route(
            "/regions",
            regions,
            _regions,
            REGIONS_BODY,
            response_model=RegionsResponse,
            responses=walked,
        ),
        route(
            "/regions/plane",
            plane,
            _plane,
            PLANE_BODY,
            response_class=Response,  # a PNG, not JSON
            responses={200: _PNG_ANSWER, **walked},
        ),
    ]
