"""POST /predict: the transport of the classifier, one route for JSON, .npy and image uploads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from service.api import errors
from service.api.exchange import Exchange
from service.api.forms import read_form
from service.api.routing import AsgiRoute
from service.api.schemas.predict import JSON, MULTIPART, NPY, REQUEST_BODY, PredictResponse
from service.classifier.predict import OPTIONS, PredictOptions, Predictor
from service.errors import (
    DeadlineExceeded,
    InvalidInput,
    NotReady,
    OodUnavailable,
    Overloaded,
    TooLarge,
    UnsupportedMediaType,
    excerpt,
)
from service.runtime import Runtime

_QUERY = frozenset(OPTIONS)


async def predict(options: Annotated[PredictOptions, Query()]) -> PredictResponse:
    """Classify one or many images. Send a JSON array in the raw value range GET /model reports
    (digits: 0..16; values outside it get a 422), image files as multipart/form-data (converted
    to grayscale and prepared like the training digits: cropped to the ink, scaled to fit,
    centred and averaged over 4x4 blocks), or a .npy array. Each image gets its label, class index, confidence and
    the top-k classes. Options go in the JSON body, as form fields or as query parameters (body
    keys and form fields take precedence)."""
    raise NotImplementedError  # documentation only: AsgiRoute serves the requests with _serve


async def _serve(exchange: Exchange) -> dict[str, Any]:
    runtime = exchange.runtime
    media = exchange.media
    if media in (JSON, NPY):
        body = await exchange.body()
        predictor = runtime.ready_predictor()
        answer = await predictor.from_array(body, exchange.query(_QUERY), npy=media == NPY)
    elif media == MULTIPART:
        predictor = runtime.ready_predictor()
        answer = await _from_upload(exchange, predictor)
    else:
        raise _unsupported(media)
    exchange.scope["state"]["images"] = len(answer["predictions"])  # for the access line
    return answer


def _unsupported(media: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"Content-Type {excerpt(media) if media else '(none)'} is not accepted; send {JSON}, {MULTIPART} "
        f"(image files) or {NPY}"
    )


async def _from_upload(exchange: Exchange, predictor: Predictor) -> dict[str, Any]:
    """The files and fields of a multipart body, held to max_images files; the rest is the
    classifier's."""
    limit = predictor.limits.max_images
    files, fields = await read_form(exchange, limit, what="images", setting="max_images")
    return await predictor.from_images(files, fields, exchange.query(_QUERY))


def route(runtime: Runtime) -> AsgiRoute:
    """POST /predict for the app that ``runtime`` serves."""
    return AsgiRoute(
        "/predict",
        predict,
        handler=_serve,
        runtime=runtime,
        methods=["POST"],
        tags=["classifier"],
        response_model=PredictResponse,
        openapi_extra={"requestBody": REQUEST_BODY},
        responses=errors.responses(
            InvalidInput,
            UnsupportedMediaType,
            TooLarge,
            Overloaded,
            NotReady,
            DeadlineExceeded,
            OodUnavailable,
        ),
    )
