"""Schemas of POST /predict: the three request bodies and the response, for the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from service.classifier.predict import PredictOptions

#: Digit "0" from the digits test data: 8x8, raw values 0..16.
ZERO: list[Any] = [
    [0, 0, 5, 13, 9, 1, 0, 0],
    [0, 0, 13, 15, 10, 15, 5, 0],
    [0, 3, 15, 2, 0, 11, 8, 0],
    [0, 4, 12, 0, 0, 8, 8, 0],
    [0, 5, 8, 0, 0, 9, 8, 0],
    [0, 4, 11, 0, 1, 12, 7, 0],
    [0, 2, 14, 5, 10, 12, 0, 0],
    [0, 0, 6, 13, 10, 0, 0, 0],
]


class PredictRequest(PredictOptions):
    """The JSON body of /predict: the images and any option (parsed by orjson and validated by
    PredictOptions; this model documents it)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"inputs": ZERO, "top_k": 3}]})

    inputs: list[Any] = Field(
        description="one image (H, W), or a batch (N, H, W) or (N, 1, H, W), in the raw value "
        "range GET /model reports (digits: 0..16)"
    )
    invert: SkipJsonSchema[Literal["auto"] | bool] = "auto"  # image files only


class ClassScore(BaseModel):
    label: str
    index: int
    probability: float


class OodScores(BaseModel):
    """Out-of-distribution scores of one image; both grow as it looks less like the training
    data."""

    hamming: int = Field(
        description="units of the OOD layer (the model metadata's ood_patterns.layer: act2 in "
        "the default export) whose on/off state differs from the nearest stored training pattern's"
    )
    energy: float = Field(description="-logsumexp of the logits")


class Prediction(BaseModel):
    """The classification of one image."""

    label: str
    index: int = Field(description="class index into the model's labels")
    confidence: float = Field(description="probability of the predicted class")
    top_k: list[ClassScore]
    probabilities: list[float] | None = Field(None, description="with return_probabilities")
    logits: list[float] | None = Field(None, description="with return_logits")
    ood: OodScores | None = Field(None, description="with return_ood")
    input: list[Any] | None = Field(
        None,
        description="with return_input: the image the model saw, raw range (5 decimals), H x W",
    )


class ModelRef(BaseModel):
    name: str
    version: str


EXAMPLE_RESPONSE: dict[str, Any] = {
    "model": {"name": "relu_cnn", "version": "1.0.0"},
    "predictions": [
        {
            "label": "0",
            "index": 0,
            "confidence": 0.9991,
            "top_k": [
                {"label": "0", "index": 0, "probability": 0.9991},
                {"label": "6", "index": 6, "probability": 0.0005},
                {"label": "8", "index": 8, "probability": 0.0002},
            ],
        }
    ],
}


#: The default model's answer to ZERO with return_ood and top_k=1.
OOD_RESPONSE: dict[str, Any] = {
    "model": {"name": "relu_cnn", "version": "1.0.0"},
    "predictions": [
        {
            "label": "0",
            "index": 0,
            "confidence": 0.9999999649561683,
            "top_k": [{"label": "0", "index": 0, "probability": 0.9999999649561683}],
            "ood": {"hamming": 33, "energy": -17.27677158045399},
        }
    ],
}


class PredictResponse(BaseModel):
    """One prediction per image, in request order, and the model that made them."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_RESPONSE, OOD_RESPONSE]})

    model: ModelRef
    predictions: list[Prediction]


JSON, MULTIPART, NPY = "application/json", "multipart/form-data", "application/x-npy"
_FORM_FIELDS = {
    name: {**schema, **({"minimum": 1, "maximum": 10} if name == "top_k" else {})}
    for name, schema in PredictOptions.model_json_schema()["properties"].items()
    if name != "normalized"
}


def image_schema(height: int, width: int, low: float, high: float) -> dict[str, Any]:
    """One (H, W) image of numbers in the raw range, as JSON Schema."""
    number = {"type": "number", "minimum": low, "maximum": high}
    row = {"type": "array", "items": number, "minItems": width, "maxItems": width}
    return {"type": "array", "items": row, "minItems": height, "maxItems": height}


def inputs_schema(height: int, width: int, low: float, high: float) -> dict[str, Any]:
    """The three layouts /predict takes: (H, W), (N, H, W), (N, 1, H, W)."""
    image = image_schema(height, width, low, high)
    one_channel = {"type": "array", "items": image, "minItems": 1, "maxItems": 1}
    return {
        "description": PredictRequest.model_fields["inputs"].description,
        "anyOf": [
            image,
            {"type": "array", "items": image, "minItems": 1},
            {"type": "array", "items": one_channel, "minItems": 1},
        ],
    }


def _json_schema() -> dict[str, Any]:
    """PredictRequest's schema with the default digits model's shapes, range and labels (the
    served model's own replace them in the published document: service/api/openapi.py)."""
    schema = PredictRequest.model_json_schema()
    schema["properties"]["inputs"] = inputs_schema(8, 8, 0.0, 16.0)
    schema["properties"]["top_k"].update(minimum=1, maximum=10)
    return schema


REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "One of three content types; options may also be given as query parameters "
    "(body keys and form fields take precedence).",
    "content": {
        JSON: {
            "schema": _json_schema(),
            "examples": {
                "one image": {"value": {"inputs": ZERO}},
                "a batch with probabilities": {
                    "value": {"inputs": [ZERO, ZERO], "top_k": 2, "return_probabilities": True}
                },
                "with out-of-distribution scores": {
                    "value": {"inputs": ZERO, "top_k": 1, "return_ood": True}
                },
            },
        },
        MULTIPART: {
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "required": ["files"],
                "properties": {
                    "files": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "format": "binary"},
                        "description": "image files: PNG, JPEG, BMP, GIF, WebP, TIFF",
                    },
                    **_FORM_FIELDS,
                },
            },
            "encoding": {
                "files": {
                    "contentType": "image/png, image/jpeg, image/bmp, image/gif, image/webp, "
                    "image/tiff"
                }
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
