"""GET /metrics in-process: values follow the traffic sent, labels stay bounded, both formats
parse, the API key rule, extra collectors and the switch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from service.api.routes.metrics import OPENMETRICS_EXAMPLE, TEXT_EXAMPLE
from service.api.schemas.predict import ZERO
from service.app import create_app
from service.classifier.inference import Inference
from service.classifier.model import Classifier
from service.config import Settings
from tests.api.conftest import wait_ready

KEY = "metrics-key-0123456789"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return samples(text_string_to_metric_families(response.text))


def samples(families: Iterable[Metric]) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in families
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def requests(found: Samples, route: str, method: str, status: int) -> float:
    return value(found, "relu_serve_requests_total", route=route, method=method, status=str(status))


def test_counts_per_status_images_and_batches_match_the_traffic(client: TestClient) -> None:
    before = scrape(client)
    images = [1, 3, 2]
    for count in images:
        response = client.post("/predict", json={"inputs": [ZERO] * count})
        assert response.status_code == 200, response.text
    assert client.post("/predict", json={"inputs": [[99.0] * 8] * 8}).status_code == 422
    assert (
        client.post("/predict", content=b"x", headers={"content-type": "text/csv"}).status_code
        == 415
    )
    after = scrape(client)

    assert requests(after, "/predict", "POST", 200) - requests(before, "/predict", "POST", 200) == 3
    assert requests(after, "/predict", "POST", 422) - requests(before, "/predict", "POST", 422) == 1
    assert requests(after, "/predict", "POST", 415) - requests(before, "/predict", "POST", 415) == 1
    duration = "relu_serve_request_duration_seconds_count"
    assert value(after, duration, route="/predict") - value(before, duration, route="/predict") == 5
    # One request after the other: each runs alone, so one model run per request.
    for name, expected in [
        ("relu_serve_inference_images_total", sum(images)),
        ("relu_serve_batch_images_count", len(images)),
        ("relu_serve_batch_images_sum", sum(images)),
        ("relu_serve_inference_duration_seconds_count", len(images)),
    ]:
        assert value(after, name) - value(before, name) == expected, name
    # The batch of 3 images falls in the bucket le=4, not in le=2.
    for le, expected in [("2.0", 2), ("4.0", 3)]:
        name = "relu_serve_batch_images_bucket"
        assert value(after, name, le=le) - value(before, name, le=le) == expected
    assert value(after, "relu_serve_ready") == 1
    assert value(after, "relu_serve_queue_images") == 0


def test_unknown_paths_and_methods_collapse_to_one_label_each(client: TestClient) -> None:
    before = scrape(client)
    for index in range(25):
        assert client.get(f"/no/such/path/{index}").status_code == 404
        assert client.request(f"FOO{index}", "/predict").status_code == 405
    after = scrape(client)
    # 50 requests to 25 paths with 25 methods: two label sets, whatever existed before.
    new = {
        dict(labels)["route"] + " " + dict(labels)["method"] + " " + dict(labels)["status"]
        for name, labels in set(after) - set(before)
        if name == "relu_serve_requests_total"
    }
    assert new <= {"unmatched GET 404", "/predict other 405"}, new
    assert (
        requests(after, "unmatched", "GET", 404) - requests(before, "unmatched", "GET", 404) == 25
    )
    assert (
        requests(after, "/predict", "other", 405) - requests(before, "/predict", "other", 405) == 25
    )
    assert not [labels for _, labels in after if any("no/such" in v for _, v in labels)]


def test_a_path_template_is_the_route_label_not_the_path(client: TestClient) -> None:
    before = scrape(client)
    assert client.get("/activations/relu").status_code == 200
    assert client.get("/activations/no-such-one").status_code == 404
    after = scrape(client)
    route = "/activations/{name}"
    assert requests(after, route, "GET", 200) - requests(before, route, "GET", 200) == 1
    assert requests(after, route, "GET", 404) - requests(before, route, "GET", 404) == 1


def test_both_formats_parse(client: TestClient) -> None:
    text = client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(text.text)}
    assert {"relu_serve_requests", "relu_serve_batch_images", "relu_serve_ready"} <= names
    accept = "application/openmetrics-text; version=1.0.0"
    om = client.get("/metrics", headers={"accept": accept})
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om.text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(om.text)}
    assert families["relu_serve_requests"].type == "counter"
    assert families["relu_serve_request_duration_seconds"].type == "histogram"
    assert families["relu_serve_queue_images"].type == "gauge"


@pytest.mark.parametrize(
    "accept", ["text/plain; version=x", "application/json", "*/*", ";;=", "text/plain;version"]
)
def test_any_other_accept_gets_prometheus_text(client: TestClient, accept: str) -> None:
    response = client.get("/metrics", headers={"accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert list(text_string_to_metric_families(response.text))


def test_a_malformed_openmetrics_version_still_gets_openmetrics(client: TestClient) -> None:
    response = client.get(
        "/metrics", headers={"accept": "application/openmetrics-text; version=abc"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        "application/openmetrics-text; version=1.0.0"
    )
    assert list(openmetrics_families(response.text))


def test_the_openapi_example_is_a_real_scrape(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    content = operation["responses"]["200"]["content"]
    assert content["text/plain"]["example"] == TEXT_EXAMPLE
    assert content["application/openmetrics-text"]["example"] == OPENMETRICS_EXAMPLE
    text = samples(text_string_to_metric_families(TEXT_EXAMPLE))
    assert text == samples(openmetrics_families(OPENMETRICS_EXAMPLE))
    live = scrape(client)
    assert {key for key in text if key[0] != "relu_serve_batch_images_bucket"} <= set(live)


def test_extra_collectors_are_rendered(client: TestClient) -> None:
    class Units:
        def collect(self) -> Iterator[Metric]:
            family = GaugeMetricFamily("relu_serve_test_units", "test", labels=["layer"])
            family.add_metric(["act1"], 7)
            yield family

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.collectors.append(Units())
    try:
        assert value(scrape(client), "relu_serve_test_units", layer="act1") == 7
    finally:
        runtime.collectors.pop()


@pytest.fixture(scope="module")
def keyed(classifier_settings: Settings, classifier: Classifier) -> Iterator[TestClient]:
    settings = classifier_settings.model_copy(update={"api_keys": [SecretStr(KEY)]})
    with TestClient(create_app(settings, classifier=classifier)) as test_client:
        wait_ready(test_client)
        yield test_client


def test_metrics_need_the_api_key_when_keys_are_set(keyed: TestClient) -> None:
    refused = keyed.get("/metrics")
    assert refused.status_code == 401
    assert "an API key is required" in refused.json()["detail"]
    before = scrape(keyed, authorization=f"Bearer {KEY}")
    assert keyed.post("/predict", json={"inputs": ZERO}).status_code == 401
    after = scrape(keyed, authorization=f"Bearer {KEY}")
    # A refused request is counted under the route it asked for.
    assert requests(after, "/predict", "POST", 401) - requests(before, "/predict", "POST", 401) == 1


def test_metrics_public_opens_only_the_metrics(
    classifier_settings: Settings, classifier: Classifier
) -> None:
    settings = classifier_settings.model_copy(
        update={"api_keys": [SecretStr(KEY)], "metrics_public": True}
    )
    with TestClient(create_app(settings, classifier=classifier)) as keyed:
        wait_ready(keyed)
        assert keyed.get("/metrics").status_code == 200
        assert keyed.get("/model").status_code == 401


def test_metrics_off_removes_the_route_and_counts_nothing(
    client: TestClient, classifier_settings: Settings, classifier: Classifier
) -> None:
    settings = classifier_settings.model_copy(update={"metrics": False})
    before = scrape(client)
    with TestClient(create_app(settings, classifier=classifier)) as quiet:
        wait_ready(quiet)
        assert quiet.get("/metrics").status_code == 404
        assert quiet.post("/predict", json={"inputs": ZERO}).status_code == 200
        assert "/metrics" not in quiet.get("/openapi.json").json()["paths"]
    after = scrape(client)
    assert value(after, "relu_serve_inference_images_total") == value(
        before, "relu_serve_inference_images_total"
    )
    assert requests(after, "/predict", "POST", 200) == requests(before, "/predict", "POST", 200)


def test_a_batch_merging_concurrent_requests_is_one_run(
    client: TestClient, classifier_settings: Settings, classifier: Classifier
) -> None:
    """The batcher's own path (submit, its worker, the queue gauge) counts one run per batch."""
    inference = Inference(classifier, classifier_settings)
    batch = np.zeros((1, *classifier.metadata.input_shape), dtype=np.float32)

    async def three_at_once() -> None:
        inference.start()
        # The three submissions queue before the batcher's worker runs: one batch of three.
        await asyncio.gather(*(inference.logits(batch) for _ in range(3)))
        await inference.stop()

    before = scrape(client)
    asyncio.run(three_at_once())
    after = scrape(client)
    for name, expected in [
        ("relu_serve_batch_images_count", 1),
        ("relu_serve_batch_images_sum", 3),
        ("relu_serve_inference_images_total", 3),
    ]:
        assert value(after, name) - value(before, name) == expected, name
    assert value(after, "relu_serve_queue_images") == 0
