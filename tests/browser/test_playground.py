"""The playground in Debian's chromium, driven by Playwright: drawing, the network view, the
regions walk, the activation plot, state in the URL, keyboard, a phone's width, no other host."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits

from tests.live_server import live_server

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "playground.png"
#: Generous for a loaded 2-core machine: each answer is a request or two to the service.
WAIT_MS = 120_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
    ),
]

#: Mouse strokes on the 280 x 280 canvas, as a person draws these digits.
STROKES = {
    "1": [[(110, 80), (145, 45), (145, 240)]],
    "7": [[(80, 60), (200, 60), (130, 230)]],
    "0": [
        [
            (140, 40),
            (90, 80),
            (80, 140),
            (95, 210),
            (140, 240),
            (190, 210),
            (200, 140),
            (190, 80),
            (140, 40),
        ]
    ],
}


@pytest.fixture(scope="module")
def server(trained_model: Path) -> Iterator[str]:
    # The regions walk takes ~1 s idle; a loaded machine may need far more than the defaults.
    with live_server(
        trained_model,
        timeout_s=300,
        request_timeout_ms="120000",
        geometry_timeout_ms="120000",
        monitor_sample_every="1",
    ) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Outside:
    """Requests to any host but the service's: aborted, and remembered."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.urls: list[str] = []

    def __call__(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.base + "/") or url.startswith("data:"):
            route.continue_()
        else:
            self.urls.append(url)
            route.abort()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    outside = Outside(server)
    context.route("**/*", outside)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], errors
    assert outside.urls == [], f"requests left the service: {outside.urls}"


def open_page(page: Any, server: str, query: str = "") -> None:
    page.goto(f"{server}/playground{query}")
    page.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)


def draw(page: Any, strokes: list[list[tuple[int, int]]]) -> None:
    """Clear, draw with the mouse, wait until the answer to the last stroke is shown."""
    page.click("#clear")
    page.wait_for_selector("#draw-canvas:not([data-pending])", timeout=WAIT_MS)
    box = page.get_by_test_id("draw-canvas").bounding_box()
    scale = box["width"] / 280
    for stroke in strokes:
        (x, y), *rest = stroke
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=8)
        page.mouse.up()
    page.wait_for_selector("#draw-canvas:not([data-pending])", timeout=WAIT_MS)


@pytest.mark.parametrize("digit", list(STROKES))
def test_a_drawn_digit_is_classified(page: Any, server: str, digit: str) -> None:
    open_page(page, server)
    draw(page, STROKES[digit])
    assert page.get_by_test_id("prediction").inner_text() == digit
    assert page.locator("[data-testid=topk] li").count() == 5
    seen = page.evaluate("window.playground.prediction.input")
    assert np.asarray(seen).shape == (8, 8)
    # The network view: one map per ReLU layer, for this drawing.
    layers = page.locator("[data-testid=layer-maps] .layer h3").all_inner_texts()
    assert layers == ["act1", "act2", "act3", "act_fc"]
    explained = page.evaluate("window.playground.explanation")
    assert explained["label"] == digit


def test_dead_units_are_the_monitors(page: Any, server: str) -> None:
    digits = load_digits()
    batch = {"inputs": digits.images[:64].tolist()}
    assert httpx.post(f"{server}/predict", json=batch, timeout=60).status_code == 200
    deadline = time.monotonic() + 120
    while httpx.get(f"{server}/monitor/relu", timeout=10).json()["images"] < 64:
        assert time.monotonic() < deadline, "the monitor never counted the batch"
        time.sleep(0.2)
    open_page(page, server)
    draw(page, STROKES["0"])
    monitor = page.evaluate("window.playground.monitor")
    texts = page.locator("[data-testid=layer-maps] .layer p").all_inner_texts()
    for layer, text in zip(monitor["layers"], texts, strict=True):
        assert f"{layer['dead_units']} dead over {layer['images']} sampled images" in text
    assert any(layer["dead_units"] > 0 for layer in monitor["layers"])


def test_the_activation_plot_shows_what_activate_answers(page: Any, server: str) -> None:
    open_page(page, server)
    page.get_by_test_id("function-select").select_option("leaky_relu")
    page.fill("#params input[data-param=negative_slope]", "0.2")
    page.press("#params input[data-param=negative_slope]", "Enter")
    page.dispatch_event("#params input[data-param=negative_slope]", "change")
    plotted = _wait_for(
        page,
        "window.playground.activation",
        lambda a: a["fn"] == "leaky_relu" and [k["grad"] for k in a["kinks"]] == [0.2],
    )
    body = {
        "function": "leaky_relu",
        "params": {"negative_slope": 0.2},
        "x": plotted["x"],
        "outputs": ["value", "grad"],
        "dtype": "float64",
    }
    answer = httpx.post(f"{server}/activate", json=body, timeout=60).json()
    assert plotted["value"] == answer["value"]
    assert plotted["grad"] == answer["grad"]
    # The kink at 0 is marked with torch's convention: leaky_relu'(0) = negative_slope.
    assert plotted["kinks"] == [{"x": 0, "value": 0, "grad": 0.2}]
    assert "fn=leaky_relu" in page.url
    assert "negative_slope=0.2" in page.url


def test_a_shared_link_restores_the_state(page: Any, server: str) -> None:
    open_page(page, server, "?fn=hardtanh&min_val=-0.5&max_val=2&lo=-3&hi=3&vs=gelu")
    assert page.get_by_test_id("function-select").input_value() == "hardtanh"
    assert page.input_value("#params input[data-param=min_val]") == "-0.5"
    assert page.input_value("#params input[data-param=max_val]") == "2"
    assert page.input_value("#range-lo") == "-3"
    assert page.input_value("#compare-select") == "gelu"
    plotted = page.evaluate("window.playground.activation")
    assert plotted["x"][0] == -3
    assert plotted["x"][-1] == 3
    assert sorted(k["x"] for k in plotted["kinks"]) == [-0.5, 2]
    assert all(k["grad"] == 0 for k in plotted["kinks"])  # hardtanh' = 0 at both ends


def test_the_regions_plot_shows_the_exact_walk(page: Any, server: str) -> None:
    open_page(page, server)
    shown = page.evaluate("window.playground.regions")
    assert shown is not None, page.inner_text("#error")
    answer = shown["answer"]
    t, logits = answer["knots"]["t"], np.asarray(answer["knots"]["logits"])
    assert shown["data"][0] == t
    assert np.array_equal(np.asarray(shown["data"][1:]).T, logits)
    assert answer["decision_changes"], "a 1 and a 7 have a decision change between them"
    assert page.get_by_test_id("regions-plot").locator("canvas").count() >= 1
    # The drawing can be an end of the segment.
    draw(page, STROKES["0"])
    page.click("#to-b")
    _wait_for(page, "window.playground.regions", lambda r: r["answer"] != answer)
    assert page.input_value("#preset-b") == "drawing"


def test_the_page_works_by_keyboard(page: Any, server: str) -> None:
    open_page(page, server)
    page.focus("[data-testid=draw-canvas]")
    page.keyboard.press("Space")  # pen down
    for _ in range(10):
        page.keyboard.press("ArrowDown")
    page.wait_for_selector("#draw-canvas:not([data-pending])", timeout=WAIT_MS)
    assert page.get_by_test_id("prediction").inner_text() == "1"
    page.focus("[data-testid=function-select]")
    page.keyboard.press("ArrowDown")
    assert page.get_by_test_id("function-select").input_value() != "relu"


def test_the_page_reads_at_360_px(browser: Any, server: str) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    context.route("**/*", Outside(server))
    page = context.new_page()
    open_page(page, server)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    context.close()


def test_a_screenshot_of_the_page(page: Any, server: str, tmp_path: Path) -> None:
    """The README's picture; UPDATE_SCREENSHOT=1 writes it to docs/playground.png."""
    open_page(page, server, "?fn=leaky_relu&negative_slope=0.1&vs=gelu")
    draw(page, STROKES["7"])
    target = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "playground.png"
    target.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000


def _wait_for(page: Any, expression: str, done: Any, timeout_s: float = 120.0) -> Any:
    """Poll ``expression`` until ``done(value)``: wait_for_function evaluates strings, which
    the page's Content-Security-Policy forbids (no 'unsafe-eval')."""
    deadline = page.evaluate("Date.now()") + timeout_s * 1000
    while True:
        value = page.evaluate(expression)
        if value is not None and done(value):
            return value
        assert page.evaluate("Date.now()") < deadline, f"{expression} never got there"
        page.wait_for_timeout(100)


def test_with_api_keys_the_page_asks_for_one(browser: Any, dry_run_model: Path) -> None:
    key = "playground-key-0123456789"
    with live_server(dry_run_model, timeout_s=300, api_keys=key) as base:
        context = browser.new_context()
        outside = Outside(base)
        context.route("**/*", outside)
        page = context.new_page()
        page.goto(f"{base}/playground")  # the page itself is open, like /docs
        page.wait_for_selector("#key-form:not([hidden])", timeout=WAIT_MS)
        page.fill("#key-input", key)
        page.click("#key-form button")
        page.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
        assert page.evaluate("sessionStorage.getItem('relu-serve-api-key')") == key
        assert page.evaluate("window.playground.activation.fn") == "relu"
        context.close()
        assert outside.urls == []
