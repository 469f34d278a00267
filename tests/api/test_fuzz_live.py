"""Damaged files against a live server: every answer a JSON 4xx or a 200, on one kept-alive
connection that a broken request never takes down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.test_schemathesis import ARRAYS, IMAGES, _npy, _npz
from tests.live_server import live_server


@st.composite
def damaged(draw: st.DrawFn, files: st.SearchStrategy[bytes]) -> bytes:
    """A file with a few of its bytes overwritten, some cut, or both."""
    data = bytearray(draw(files))
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


NPY = damaged(ARRAYS.map(_npy))
NPZ = damaged(st.builds(_npz, ARRAYS, st.booleans()))
JSON = damaged(st.just(b'{"function": "relu", "x": [[1.5, -2], [3, 4e38]], "outputs": ["grad"]}'))


@pytest.fixture(scope="module")
def client(dry_run_model: Path) -> Iterator[httpx.Client]:
    with (
        live_server(dry_run_model) as base,
        httpx.Client(base_url=base, timeout=60) as session,
    ):
        yield session


def answered_in_json(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json" or response.status_code == 200
    if response.status_code >= 400:
        assert response.json()["request_id"] == response.headers["x-request-id"]


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@FUZZ
@given(body=NPY, route=st.sampled_from(["/predict", "/activate?function=gelu"]))
def test_damaged_npy(client: httpx.Client, body: bytes, route: str) -> None:
    answered_in_json(
        client.post(route, content=body, headers={"content-type": "application/x-npy"})
    )


@pytest.mark.slow
@FUZZ
@given(body=NPZ)
def test_damaged_npz(client: httpx.Client, body: bytes) -> None:
    headers = {"content-type": "application/x-npz"}
    answered_in_json(client.post("/activate?function=silu", content=body, headers=headers))


@pytest.mark.slow
@FUZZ
@given(files=st.lists(damaged(IMAGES), min_size=1, max_size=3))
def test_damaged_images(client: httpx.Client, files: list[bytes]) -> None:
    upload = [("files", (f"{i}.img", data)) for i, data in enumerate(files)]
    answered_in_json(client.post("/predict", files=upload))


@pytest.mark.slow
@FUZZ
@given(body=JSON)
def test_damaged_json(client: httpx.Client, body: bytes) -> None:
    headers = {"content-type": "application/json"}
    answered_in_json(client.post("/activate", content=body, headers=headers))
