"""The baseline: /activate written the FastAPI tutorial way (pydantic list[float] in and out).

Run: uvicorn bench.baseline_activate:app
Same numpy math as a typical user would write it; what differs from relu-serve is the wire path:
pydantic validates every float of {"x": [...]} and builds the response model's lists.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel
from scipy.special import erf


class ActivateRequest(BaseModel):
    x: list[float]


class ActivateResponse(BaseModel):
    value: list[float]
    grad: list[float]


app = FastAPI()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


@app.post("/activate/{function}", response_model=ActivateResponse)
def activate(function: Literal["relu", "gelu", "sigmoid"], request: ActivateRequest) -> dict:
    x = np.asarray(request.x, dtype=np.float32)
    if function == "relu":
        value, grad = np.maximum(x, 0), (x > 0).astype(np.float32)
    elif function == "sigmoid":
        value = _sigmoid(x)
        grad = value * (1 - value)
    else:
        cdf = 0.5 * (1 + erf(x / np.sqrt(2)))
        value = x * cdf
        grad = cdf + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    return {"value": value.tolist(), "grad": grad.tolist()}
