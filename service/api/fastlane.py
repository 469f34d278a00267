"""The /predict fast lane: JSON and .npy bodies served in pure ASGI, same code and answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.body_limit import body_too_large
from service.api.errors import describe
from service.api.predict import JSON, NPY, QUERY_OPTIONS, classify
from service.api.responses import ORJSON_OPTIONS
from service.errors import NotReady, ServiceError
from service.inference import Inference

_JSON_HEADERS = [(b"content-type", b"application/json")]


class PredictFastLane:
    """Serve ``POST /predict`` with a JSON or .npy body before the framework sees it.

    Measured on this machine: FastAPI's per-request work (routing, dependency solving, query
    parameter validation, Request and Response objects) cost several times the model's 50 us on
    a single-image request. This lane does only what the request needs and calls the very
    function the route calls (``predict.classify``), so bodies, options, answers and errors
    are the same; the route stays the documented operation (OpenAPI) and serves multipart
    uploads, and everything else passes through untouched.
    """

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/predict" and scope["method"] == "POST":
            media, length = _headers(scope)
            if media in (JSON, NPY):
                await self._serve(scope, receive, send, media, length)
                return
        await self.app(scope, receive, send)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, media: str, length: int | None
    ) -> None:
        settings = self.state.settings
        try:
            limit = settings.max_body_bytes
            if length is not None and length > limit:
                raise body_too_large(limit)
            body = await _read_body(receive, limit)
            if body is None:  # the client went away
                return
            inference: Inference | None = self.state.inference
            if inference is None or not inference.classifier.ready:
                raise NotReady(f"not ready: {self.state.not_ready_reason}")
            query = {
                key: value
                for key, value in parse_qsl(scope["query_string"].decode("latin-1"))
                if key in QUERY_OPTIONS
            }
            answer: Any = await classify(inference, settings, media, body, query)
            status, headers = 200, _JSON_HEADERS
        except ServiceError as exc:
            status, detail, extra = describe(exc, settings.overload_status)
            answer = {"detail": detail}
            headers = _JSON_HEADERS + [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        payload = orjson.dumps(answer, option=ORJSON_OPTIONS)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _headers(scope: Scope) -> tuple[str, int | None]:
    """The media type (lower case, parameters dropped) and the declared Content-Length."""
    media, length = "", None
    for key, value in scope["headers"]:
        if key == b"content-type":
            media = value.decode("latin-1").split(";", 1)[0].strip().lower()
        elif key == b"content-length" and value.isdigit():
            length = int(value)
    return media, length


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, refused with TooLarge as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
