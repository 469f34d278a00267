"""The baseline: /predict written the FastAPI tutorial way (pydantic body and response model).

Run: BENCH_MODEL=m.onnx uvicorn --factory bench.tutorial_fastapi:create_app
Same model, same session settings and the same answer as relu-serve for JSON images; only the
request path differs: pydantic validates every float of the body and builds the response.
"""

from __future__ import annotations

import os

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from bench._common import bench_session
from service.metadata import INPUT_NAME, ModelMetadata


class PredictRequest(BaseModel):
    inputs: list[list[list[float]]]


class ClassScore(BaseModel):
    label: str
    index: int
    probability: float


class Prediction(BaseModel):
    label: str
    index: int
    confidence: float
    top_k: list[ClassScore]


class ModelRef(BaseModel):
    name: str
    version: str


class PredictResponse(BaseModel):
    model: ModelRef
    predictions: list[Prediction]


def create_app() -> FastAPI:
    session = bench_session(os.environ["BENCH_MODEL"])
    meta = ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map)
    app = FastAPI()

    @app.post("/predict", response_model=PredictResponse)
    def predict(request: PredictRequest) -> PredictResponse:
        x = np.array(request.inputs, dtype=np.float32)[:, None]
        logits = session.run(None, {INPUT_NAME: meta.normalize(x)})[0].astype(np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = exp / exp.sum(axis=1, keepdims=True)
        predictions = []
        for row in probabilities:
            top = np.argsort(-row, kind="stable")[:3]
            ranked = [
                ClassScore(label=meta.labels[i], index=int(i), probability=float(row[i]))
                for i in top
            ]
            predictions.append(
                Prediction(
                    label=ranked[0].label,
                    index=ranked[0].index,
                    confidence=ranked[0].probability,
                    top_k=ranked,
                )
            )
        return PredictResponse(
            model=ModelRef(name=meta.name, version=meta.version), predictions=predictions
        )

    return app
