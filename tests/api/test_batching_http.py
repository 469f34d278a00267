"""Dynamic batching seen over HTTP: merged requests, backpressure (503/429 + Retry-After), deadlines.

The requests are sent concurrently from one event loop straight into the ASGI app, so they are
all queued before the batcher's worker runs: what gets merged or refused is deterministic.

The digits model is so fast that an idle server runs each request inline at once (the
calibration's inline budget); these tests set that budget to zero, so that the model takes the
path a model slower than the budget takes: through the queue.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from service.app import create_app
from service.config import Settings

DIGIT = np.arange(64, dtype=np.float32).reshape(8, 8) % 17


@pytest.fixture(autouse=True)
def through_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.classifier.inference.INLINE_BUDGET_S", 0.0)
    monkeypatch.setattr("service.classifier.inference.ONE_CPU_INLINE_BUDGET_S", 0.0)


@asynccontextmanager
async def serving(model: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(model_path=model, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relu-serve") as client:
            for _ in range(500):  # bounded wait for the warm-up
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            yield client


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def run(scenario: Callable[[], Any]) -> Any:
    return asyncio.run(scenario())


def test_concurrent_requests_run_as_one_batch(dry_run_model: Path) -> None:
    async def scenario() -> tuple[list[httpx.Response], dict[str, Any]]:
        async with serving(dry_run_model) as client:
            before = (await client.get("/model")).json()["batching"]
            answers = await asyncio.gather(
                *(
                    client.post("/predict", json={"inputs": (DIGIT * (i % 2)).tolist()})
                    for i in range(8)
                )
            )
            after = (await client.get("/model")).json()["batching"]
            return answers, {"before": before, "after": after}

    answers, batching = run(scenario)
    assert [a.status_code for a in answers] == [200] * 8
    # Each caller got its own image's answer: the even ones sent zeros, the odd ones a digit.
    zero, digit = answers[0].json()["predictions"][0], answers[1].json()["predictions"][0]
    for i, answer in enumerate(answers):
        assert answer.json()["predictions"][0] == (digit if i % 2 else zero)
    before, after = batching["before"], batching["after"]
    assert after["enabled"] is True
    assert after["batches"] - before["batches"] == 1
    assert after["requests"] - before["requests"] == 8
    assert after["last_batch_images"] == 8


def test_batching_off_runs_each_request_alone(dry_run_model: Path) -> None:
    async def scenario() -> tuple[list[int], dict[str, Any]]:
        async with serving(dry_run_model, batching=False) as client:
            answers = await asyncio.gather(
                *(client.post("/predict", json={"inputs": DIGIT.tolist()}) for _ in range(4))
            )
            return [a.status_code for a in answers], (await client.get("/model")).json()["batching"]

    statuses, batching = run(scenario)
    assert statuses == [200] * 4
    assert batching["enabled"] is False
    assert batching["batches"] == 0


@pytest.mark.parametrize("status", [503, 429])
def test_a_full_queue_answers_with_retry_after(dry_run_model: Path, status: int) -> None:
    batch = npy(np.zeros((64, 8, 8), dtype=np.float32))

    async def scenario() -> list[httpx.Response]:
        async with serving(
            dry_run_model, max_queue_images=64, max_images=64, overload_status=status
        ) as client:
            headers = {"content-type": "application/x-npy"}
            return await asyncio.gather(
                *(client.post("/predict", content=batch, headers=headers) for _ in range(3))
            )

    first, *refused = run(scenario)
    assert first.status_code == 200
    for answer in refused:
        assert answer.status_code == status
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["detail"] == (
            "the queue is full (64 images waiting, limit 64); retry shortly"
        )


def test_a_request_past_its_deadline_gets_504(dry_run_model: Path) -> None:
    """A 64-image batch runs in the ORT thread; a request queued behind it outlives 1 us."""
    batch = npy(np.zeros((64, 8, 8), dtype=np.float32))

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with serving(dry_run_model, max_images=64, request_timeout_ms=0.001) as client:
            return await asyncio.gather(
                client.post(
                    "/predict", content=batch, headers={"content-type": "application/x-npy"}
                ),
                client.post("/predict", json={"inputs": DIGIT.tolist()}),
            )

    _, late = run(scenario)
    assert late.status_code == 504
    assert late.json()["detail"] == (
        "the request waited more than 0.001 ms (request_timeout_ms) and was dropped"
    )
