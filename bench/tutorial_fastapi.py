"""The baseline: /predict written the FastAPI tutorial way (pydantic body and response model).

Run: BENCH_MODEL=m.onnx uvicorn --factory bench.tutorial_fastapi:create_app
Same model, same session settings and the same answer as relu-serve for JSON images; only the
request path differs: pydantic validates every float of the body and builds the response.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel

from service.metadata import ModelMetadata


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
    # The same thread settings as relu-serve, so that the comparison is about the request path.
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        os.environ["BENCH_MODEL"], options, providers=["CPUExecutionProvider"]
    )
    meta = ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map)
    low, high = meta.input_range
    app = FastAPI()

    @app.post("/predict", response_model=PredictResponse)
    def predict(request: PredictRequest) -> PredictResponse:
        x = np.array(request.inputs, dtype=np.float32)[:, None]
        x = ((x - low) / (high - low) - meta.mean) / meta.std
        logits = session.run(None, {"input": x.astype(np.float32)})[0].astype(np.float64)
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
