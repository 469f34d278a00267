"""What the playground stands on, over HTTP: the page and its assets from the package, the
input /predict saw (return_input), and the logits at every knot of /regions (logits=true)."""

from __future__ import annotations

import re
from itertools import pairwise

import numpy as np
from fastapi.testclient import TestClient

from service.api.schemas.geometry import ONE, RegionsResponse
from service.api.schemas.predict import ZERO
from tests.api.test_predict import png

#: The issue's budget for the whole page, every asset included.
MAX_PAGE_BYTES = 300 * 1024


def test_the_page_and_its_assets_come_from_the_service(client: TestClient) -> None:
    page = client.get("/playground")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "connect-src 'self'" in policy
    assert "script-src 'self';" in policy  # no inline or eval'd script
    html = page.text
    assets = re.findall(r'(?:src|href)="(/playground/assets/[^"]+)"', html)
    modules = {"main.js"}
    total = len(page.content)
    for path in assets:
        response = client.get(path)
        assert response.status_code == 200, path
        total += len(response.content)
    # The page's modules import each other: follow the imports too.
    seen: set[str] = set()
    while modules - seen:
        name = (modules - seen).pop()
        seen.add(name)
        source = client.get(f"/playground/assets/playground/{name}")
        assert source.status_code == 200, name
        if f"/playground/assets/playground/{name}" not in assets:
            total += len(source.content)
        modules |= set(re.findall(r'from "\./([a-z]+\.js)"', source.text))
    assert {"api.js", "draw.js", "activations.js", "regions.js", "digits.js"} <= seen
    assert total <= MAX_PAGE_BYTES, total
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "the page names another host"


def test_the_vendored_library_carries_its_licence_and_pin(client: TestClient) -> None:
    licence = client.get("/playground/assets/vendor/uplot/LICENSE")
    assert licence.status_code == 200
    assert "MIT" in licence.text
    pin = client.get("/playground/assets/vendor/uplot/VERSION").text
    assert pin.startswith("uplot@1.6.32 sha512-")


def test_an_unknown_asset_is_a_404(client: TestClient) -> None:
    assert client.get("/playground/assets/playground/nope.js").status_code == 404
    assert client.get("/playground/assets/../config.py").status_code == 404


def test_predict_returns_the_input_the_model_saw(client: TestClient) -> None:
    digit = np.asarray(ONE, dtype=float)
    answer = client.post("/predict", json={"inputs": [ONE], "return_input": True}).json()
    assert np.array_equal(answer["predictions"][0]["input"], digit)
    upload = np.zeros((64, 64), np.uint8)
    upload[8:56, 28:36] = 255  # a bar: cropped, fitted and centred into 8x8
    files = {"files": ("bar.png", png(upload), "image/png")}
    answer = client.post("/predict", files=files, data={"return_input": "true"}).json()
    seen = np.asarray(answer["predictions"][0]["input"])
    assert seen.shape == (8, 8)
    assert seen.min() == 0
    assert seen.max() == 16
    columns = seen.sum(axis=0)
    assert abs(columns @ np.arange(8) / columns.sum() - 3.5) <= 0.5, "the bar is centred"
    assert "input" not in client.post("/predict", json={"inputs": [ONE]}).json()["predictions"][0]


def test_regions_logits_are_exact_at_every_knot(client: TestClient) -> None:
    body = client.post("/regions", json={"start": ZERO, "end": ONE, "logits": True}).json()
    RegionsResponse.model_validate(body)
    t, logits = body["knots"]["t"], np.asarray(body["knots"]["logits"])
    assert t[0] == 0
    assert t[-1] == 1
    assert all(a < b for a, b in pairwise(t))
    assert set(body["decision_changes"]) <= set(t)
    assert {p["t0"] for p in body["pieces"]} <= set(t)
    # At every knot the logits are the network's own at x(t) (ORT in float32 here).
    start, end = np.asarray(ZERO, float), np.asarray(ONE, float)
    images = [(start + s * (end - start)).tolist() for s in t[:: max(1, len(t) // 40)]]
    for chunk in range(0, len(images), 16):
        batch = images[chunk : chunk + 16]
        predicted = client.post("/predict", json={"inputs": batch, "return_logits": True}).json()
        ort = np.array([p["logits"] for p in predicted["predictions"]])
        expected = logits[:: max(1, len(t) // 40)][chunk : chunk + 16]
        assert np.abs(ort - expected).max() < 1e-4
    assert "knots" not in client.post("/regions", json={"start": ZERO, "end": ONE}).json()
