"""POST /predict: classify images sent as JSON arrays, image files or a .npy array."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from service import tensors
from service.api import offload
from service.api.deps import InferenceDep, SettingsDep
from service.api.responses import OrjsonResponse
from service.api.schemas.health import ErrorDetail
from service.api.schemas.predict import ZERO, PredictOptions, PredictRequest, PredictResponse
from service.config import Settings
from service.errors import InvalidInput, TooLarge, UnsupportedMediaType
from service.imaging import image_to_input
from service.inference import Inference
from service.model import Classifier, check_top_k, softmax, top_k

router = APIRouter(tags=["classifier"])

JSON, MULTIPART, NPY = "application/json", "multipart/form-data", "application/x-npy"
NPY_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.uint8))
_OPTIONS = tuple(PredictOptions.model_fields)
#: The options /predict takes as query parameters (the fast lane reads the same ones).
QUERY_OPTIONS = frozenset(
    {"top_k", "return_probabilities", "return_logits", "normalized", "invert"}
)

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "One of three content types; options may also be given as query parameters "
    "(body keys and form fields take precedence).",
    "content": {
        JSON: {
            "schema": PredictRequest.model_json_schema(),
            "examples": {
                "one image": {"value": {"inputs": ZERO}},
                "a batch with probabilities": {
                    "value": {"inputs": [ZERO, ZERO], "top_k": 2, "return_probabilities": True}
                },
            },
        },
        MULTIPART: {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "image files: PNG, JPEG, BMP, GIF, WebP, TIFF",
                    },
                    "invert": {"type": "string", "enum": ["auto", "true", "false"]},
                    "top_k": {"type": "integer", "default": 3},
                    "return_probabilities": {"type": "boolean", "default": False},
                    "return_logits": {"type": "boolean", "default": False},
                },
            },
            "examples": {
                "two photos": {"value": {"files": ["seven.png", "three.jpg"], "invert": "auto"}}
            },
        },
        NPY: {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "numpy.save of one array (N, H, W) or (N, 1, H, W); float32, "
                "float64 or uint8; options as query parameters",
            },
            "examples": {"a batch": {"value": "<bytes of numpy.save(f, images)>"}},
        },
    },
}


@router.post(
    "/predict",
    response_model=PredictResponse,
    openapi_extra={"requestBody": REQUEST_BODY},
    responses={
        413: {"model": ErrorDetail, "description": "body, image or batch over a limit"},
        415: {"model": ErrorDetail, "description": "unsupported content type or file format"},
        422: {"model": ErrorDetail, "description": "the inputs or options are invalid"},
        503: {"model": ErrorDetail, "description": "the model is not ready yet"},
    },
)
async def predict(
    request: Request,
    inference: InferenceDep,
    settings: SettingsDep,
    top_k: Annotated[int | None, Query(description="classes listed per image (default 3)")] = None,
    return_probabilities: Annotated[bool | None, Query()] = None,
    return_logits: Annotated[bool | None, Query()] = None,
    normalized: Annotated[bool | None, Query(description="JSON and .npy only")] = None,
    invert: Annotated[Literal["auto", "true", "false"] | None, Query()] = None,
) -> OrjsonResponse:
    """Classify one or many images. Send a JSON array in the raw value range GET /model reports
    (digits: 0..16), image files as multipart/form-data (converted to grayscale and resized like
    the training data), or a .npy array. Each image gets its label, class index, confidence and
    the top-k classes."""
    query = {
        "top_k": top_k,
        "return_probabilities": return_probabilities,
        "return_logits": return_logits,
        "normalized": normalized,
        "invert": invert,
    }
    given = {key: value for key, value in query.items() if value is not None}
    classifier = inference.classifier
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == JSON:  # JSON and .npy normally arrive through the fast lane; same code
        return OrjsonResponse(
            await classify(inference, settings, JSON, await request.body(), given)
        )
    if media == NPY:
        return OrjsonResponse(await classify(inference, settings, NPY, await request.body(), given))
    if media == MULTIPART:
        batch, options = await _from_files(request, given, classifier, settings)
        logits = await inference.logits(batch)
        return OrjsonResponse(_response(classifier, logits, options))
    raise UnsupportedMediaType(
        f"Content-Type {media or '(none)'!r} is not accepted; send {JSON}, {MULTIPART} "
        f"(image files) or {NPY}"
    )


async def classify(
    inference: Inference, settings: Settings, media: str, body: bytes, query: Mapping[str, Any]
) -> dict[str, Any]:
    """The whole of /predict for an array body (JSON or .npy): decode, check, run, answer.

    Shared by the route above and by the ASGI fast lane (service/api/fastlane.py), which
    serves the same bodies without the framework's per-request machinery.
    """
    classifier = inference.classifier
    decode = _from_json if media == JSON else _from_npy
    batch, options = await offload.by_size(
        len(body), decode, body, dict(query), classifier, settings
    )
    logits = await inference.logits(batch)
    return _response(classifier, logits, options)


def _options(values: Mapping[str, Any], *, images: bool, num_classes: int) -> PredictOptions:
    try:
        options = PredictOptions.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"][:1])
        if error["type"] == "extra_forbidden":
            raise InvalidInput(
                f"unknown option {name!r}; allowed: inputs, {', '.join(_OPTIONS)}"
            ) from None
        raise InvalidInput(f"{name}: {error['msg']} (got {error.get('input')!r})") from None
    if images and "normalized" in values:
        raise InvalidInput("normalized applies to JSON and .npy inputs, not image files")
    if not images and "invert" in values:
        raise InvalidInput("invert applies to image files, not JSON or .npy inputs")
    check_top_k(options.top_k, num_classes)
    return options


def _from_json(
    body: bytes, query: dict[str, Any], classifier: Classifier, settings: Settings
) -> tuple[np.ndarray, PredictOptions]:
    document = tensors.parse_json(body)
    if not isinstance(document, dict) or "inputs" not in document:
        raise InvalidInput('the JSON body must be an object with "inputs": [[...], ...]')
    inputs = document.pop("inputs")
    options = _options(
        {**query, **document}, images=False, num_classes=classifier.metadata.num_classes
    )
    if isinstance(inputs, list) and len(inputs) > settings.max_images and _rank(inputs) >= 3:
        raise TooLarge(f"{len(inputs)} images exceeds the limit of {settings.max_images}")
    raw = tensors.array_from_json(
        inputs, dtype=np.float32, max_elements=_max_elements(classifier, settings), name="inputs"
    )
    batch = classifier.prepare(raw, normalized=options.normalized, max_images=settings.max_images)
    return batch, options


def _from_npy(
    body: bytes, query: dict[str, Any], classifier: Classifier, settings: Settings
) -> tuple[np.ndarray, PredictOptions]:
    options = _options(query, images=False, num_classes=classifier.metadata.num_classes)
    raw = tensors.load_npy(
        body, max_elements=_max_elements(classifier, settings), allowed_dtypes=NPY_DTYPES
    )
    batch = classifier.prepare(raw, normalized=options.normalized, max_images=settings.max_images)
    return batch, options


async def _from_files(
    request: Request, query: dict[str, Any], classifier: Classifier, settings: Settings
) -> tuple[np.ndarray, PredictOptions]:
    if classifier.metadata.input_shape[0] != 1:
        raise InvalidInput("this model takes multi-channel input; send a JSON or .npy array")
    try:
        async with request.form(max_files=settings.max_images, max_fields=32) as form:
            files: list[tuple[str, bytes]] = []
            fields: dict[str, Any] = {}
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files.append((value.filename or key, await value.read()))
                else:
                    fields[key] = value
    except HTTPException as exc:  # starlette's multipart parser reports limits and syntax so
        if "Too many files" in str(exc.detail):
            raise TooLarge(
                f"more than {settings.max_images} images in one request (max_images)"
            ) from None
        raise InvalidInput(f"malformed multipart body: {exc.detail}") from None
    options = _options(
        {**query, **fields}, images=True, num_classes=classifier.metadata.num_classes
    )
    if not files:
        raise InvalidInput("the multipart body holds no files; attach images as 'files'")
    invert = None if options.invert == "auto" else bool(options.invert)
    return await run_in_threadpool(_decode, files, invert, classifier, settings), options


def _decode(
    files: list[tuple[str, bytes]],
    invert: bool | None,
    classifier: Classifier,
    settings: Settings,
) -> np.ndarray:
    images = [
        image_to_input(
            data,
            name=name,
            size=classifier.image_shape,
            value_range=classifier.metadata.input_range,
            invert=invert,
            max_pixels=settings.max_image_pixels,
        )
        for name, data in files
    ]
    return classifier.prepare(np.stack(images), max_images=settings.max_images)


def _max_elements(classifier: Classifier, settings: Settings) -> int:
    """A memory guard generous enough that a wrong shape or too many images get their own,
    clearer message from Classifier.prepare."""
    per_image = int(np.prod(classifier.metadata.input_shape))
    return max(settings.max_elements, settings.max_images * per_image)


def _rank(nested: list[Any]) -> int:
    rank = 0
    node: Any = nested
    while isinstance(node, list) and node:
        rank += 1
        node = node[0]
    return rank


def _response(
    classifier: Classifier, logits: np.ndarray, options: PredictOptions
) -> dict[str, Any]:
    meta = classifier.metadata
    labels = meta.labels
    probabilities = softmax(logits.astype(np.float64))
    order = top_k(probabilities, options.top_k)
    picked = np.take_along_axis(probabilities, order, axis=1)
    # One comprehension over plain lists: this runs per image, 64 times for a 64-image request.
    predictions: list[dict[str, Any]] = [
        {
            "label": labels[indices[0]],
            "index": indices[0],
            "confidence": probs[0],
            "top_k": [
                {"label": labels[i], "index": i, "probability": p}
                for i, p in zip(indices, probs, strict=True)
            ],
        }
        for indices, probs in zip(order.tolist(), picked.tolist(), strict=True)
    ]
    if options.return_probabilities:
        for prediction, row in zip(predictions, probabilities, strict=True):
            prediction["probabilities"] = row
    if options.return_logits:
        for prediction, row in zip(predictions, logits, strict=True):
            prediction["logits"] = row
    return {"model": {"name": meta.name, "version": meta.version}, "predictions": predictions}
