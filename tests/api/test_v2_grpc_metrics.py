"""gRPC calls in the request metrics: one count per call, by call path and status code name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from service.app import create_app
from service.classifier.model import Classifier
from service.config import Settings
from tests.api.conftest import wait_ready
from tests.live_server import free_port

KEY = "grpc-metrics-key-0123456789"
CALL = "/inference.GRPCInferenceService/"


def scrape(client: TestClient) -> dict[tuple[str, str, str], float]:
    """relu_serve_requests_total and the duration histogram's _count, by (series, route,
    status), gRPC routes only."""
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            route = s.labels.get("route", "")
            if route.startswith(CALL) and s.name == "relu_serve_requests_total":
                assert s.labels["method"] == "POST"
                found[("requests", route, s.labels["status"])] = s.value
            elif route.startswith(CALL) and s.name == "relu_serve_request_duration_seconds_count":
                found[("duration", route, "")] = s.value
    return found


def test_grpc_calls_are_counted_as_sent(dry_run_model: Path, classifier: Classifier) -> None:
    port = free_port()
    settings = Settings(model_path=dry_run_model, grpc_port=port, api_keys=KEY)
    with TestClient(create_app(settings, classifier=classifier)) as client:
        wait_ready(client)
        client.headers["x-api-key"] = KEY
        before = scrape(client)
        grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{port}")
        pixels = triton_grpc.InferInput("input", [1, 8, 8], "FP32")
        pixels.set_data_from_numpy(np.full((1, 8, 8), 8, np.float32))
        headers = {"x-api-key": KEY}
        for _ in range(3):
            grpc.infer("relu_cnn", [pixels], headers=headers)
        for _ in range(2):
            assert grpc.is_server_live()  # open without a key
        with pytest.raises(InferenceServerException, match="NOT_FOUND"):
            grpc.infer("no_such_model", [pixels], headers=headers)
        with pytest.raises(InferenceServerException, match="UNAUTHENTICATED"):
            grpc.get_server_metadata()
        grpc.close()
        after = scrape(client)
    moved = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}
    assert moved == {
        ("requests", CALL + "ModelInfer", "OK"): 3,
        ("requests", CALL + "ModelInfer", "NOT_FOUND"): 1,
        ("requests", CALL + "ServerLive", "OK"): 2,
        ("requests", CALL + "ServerMetadata", "UNAUTHENTICATED"): 1,
        ("duration", CALL + "ModelInfer", ""): 4,
        ("duration", CALL + "ServerLive", ""): 2,
        ("duration", CALL + "ServerMetadata", ""): 1,
    }
