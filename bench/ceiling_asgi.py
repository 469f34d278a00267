"""The ceiling: a bare ASGI app (no framework) answering /predict for JSON images like relu-serve.

Run: BENCH_MODEL=m.onnx uvicorn --factory bench.ceiling_asgi:create_app --lifespan off
It does the least a correct JSON endpoint can do (orjson in, normalise as the service and the
training do, one session.run, softmax and top-3, orjson out), so its req/s is the most a
Python HTTP worker reaches here.
POST /echo answers the body twice (as /activate answers value and grad): the transport floor
for big binary payloads.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import orjson

from bench._common import bench_session
from service.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata

TOP_K = 3


def create_app() -> Any:
    session = bench_session(os.environ["BENCH_MODEL"])
    meta = ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map)
    shape = (-1, *meta.input_shape)
    model = {"name": meta.name, "version": meta.version}
    labels = meta.labels

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] != "POST":  # GET anything: ready
            await _send(send, 200, b"{}")
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if scope["path"] == "/echo":
            await _send(send, 200, body + body, b"application/octet-stream")
            return
        try:
            raw = np.asarray(orjson.loads(body)["inputs"], dtype=np.float32).reshape(shape)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            await _send(send, 422, orjson.dumps({"detail": str(exc)}))
            return
        logits = session.run([OUTPUT_NAME], {INPUT_NAME: meta.normalize(raw)})[0]
        z = logits.astype(np.float64)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        probabilities = z / z.sum(axis=1, keepdims=True)
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_K].tolist()
        predictions = []
        for row, indices in zip(probabilities.tolist(), order, strict=True):
            ranked = [{"label": labels[i], "index": i, "probability": row[i]} for i in indices]
            predictions.append(
                {
                    "label": labels[indices[0]],
                    "index": indices[0],
                    "confidence": row[indices[0]],
                    "top_k": ranked,
                }
            )
        await _send(send, 200, orjson.dumps({"model": model, "predictions": predictions}))

    return app


async def _send(send: Any, status: int, body: bytes, media: bytes = b"application/json") -> None:
    headers = [(b"content-type", media), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
