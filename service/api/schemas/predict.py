"""Schemas of POST /predict: options, the JSON request body (documentation) and the response."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class PredictOptions(BaseModel):
    """Options shared by every body type (JSON keys, form fields or query parameters)."""

    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(3, description="how many classes to list per image, 1..number of labels")
    return_probabilities: bool = Field(False, description="add every class probability")
    return_logits: bool = Field(False, description="add the raw logits")
    normalized: bool = Field(
        False, description="inputs are already normalised (JSON and .npy only)"
    )
    invert: Literal["auto"] | bool = Field(
        "auto",
        description="image files only: auto inverts dark ink on light paper (judged by the "
        "border) to match the light-on-dark training data; true or false forces it",
    )


class PredictRequest(BaseModel):
    """The JSON body of /predict (parsed by orjson; this model documents it)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"inputs": ZERO, "top_k": 3}]})

    inputs: list[Any] = Field(
        description="one image (H, W), or a batch (N, H, W) or (N, 1, H, W), in the raw value "
        "range GET /model reports (digits: 0..16)"
    )
    top_k: int = 3
    return_probabilities: bool = False
    return_logits: bool = False
    normalized: bool = False


class ClassScore(BaseModel):
    label: str
    index: int
    probability: float


class Prediction(BaseModel):
    """The classification of one image."""

    label: str
    index: int = Field(description="class index into the model's labels")
    confidence: float = Field(description="probability of the predicted class")
    top_k: list[ClassScore]
    probabilities: list[float] | None = Field(None, description="with return_probabilities")
    logits: list[float] | None = Field(None, description="with return_logits")


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


class PredictResponse(BaseModel):
    """One prediction per image, in request order, and the model that made them."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_RESPONSE]})

    model: ModelRef
    predictions: list[Prediction]
