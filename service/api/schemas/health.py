"""Schemas of the liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Alive(BaseModel):
    """The process answers HTTP."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "alive"}]})

    status: Literal["alive"] = "alive"


class Ready(BaseModel):
    """The model is loaded and warmed up; /predict will answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ready", "model": "relu_cnn", "version": "1.0.0"}]
        }
    )

    status: Literal["ready"] = "ready"
    model: str
    version: str


class ErrorDetail(BaseModel):
    """The one error shape: a message that says what to fix (each operation documents its own
    examples, from service/api/errors.py)."""

    detail: str
    request_id: str | None = Field(
        None, description="the request's id, as in its X-Request-ID header and the log"
    )
