"""Digits as people draw and photograph them (examples/drawn/) classify right through /predict."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.api.conftest import wait_ready

DRAWN = Path(__file__).resolve().parents[2] / "examples" / "drawn"
FILES = sorted(p for p in DRAWN.iterdir() if p.suffix in (".png", ".jpg"))

spec = importlib.util.spec_from_file_location("make_drawn", DRAWN / "make_drawn.py")
assert spec is not None
assert spec.loader is not None
make_drawn = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_drawn)


def test_the_set_is_what_its_script_makes(tmp_path: Path) -> None:
    made = make_drawn.make(tmp_path)
    assert sorted(p.name for p in made) == [p.name for p in FILES]
    assert len(FILES) == 10 * len(make_drawn.STYLES)
    for path in made:
        assert path.read_bytes() == (DRAWN / path.name).read_bytes(), path.name


@pytest.fixture(scope="module")
def client(trained_model: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_path=trained_model))) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.mark.slow
def test_at_least_95_percent_of_the_drawn_digits_are_right(client: TestClient) -> None:
    files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in FILES]
    response = client.post("/predict", files=files)
    assert response.status_code == 200, response.text
    answers = [p["label"] for p in response.json()["predictions"]]
    misses = [f"{p.name} -> {a}" for p, a in zip(FILES, answers, strict=True) if p.name[0] != a]
    assert len(misses) <= 0.05 * len(FILES), misses


@pytest.mark.slow
def test_every_style_is_mostly_right(client: TestClient) -> None:
    """No style carried by the others: at least 8 of its 10 digits right."""
    for style in make_drawn.STYLES:
        chosen = [p for p in FILES if p.stem.endswith(f"-{style}")]
        files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in chosen]
        answers = [p["label"] for p in client.post("/predict", files=files).json()["predictions"]]
        right = sum(p.name[0] == a for p, a in zip(chosen, answers, strict=True))
        assert right >= 8, (style, right)
