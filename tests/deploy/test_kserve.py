"""deploy/kserve/: the ServingRuntime and InferenceService against KServe 0.21.0's schema (derived
from its SDK's models: deploy/kserve/schema_from_sdk.py), the runtime's container against the
Kubernetes schema, and the contract between the two files and the service's settings."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from service.config import Settings
from tests.deploy.conftest import REPO

KSERVE = REPO / "deploy" / "kserve"
SCHEMA = json.loads((KSERVE / "kserve-0.21.0.schema.json").read_text(encoding="utf-8"))
API_VERSIONS = {
    "ServingRuntime": "serving.kserve.io/v1alpha1",
    "InferenceService": "serving.kserve.io/v1beta1",
}
FILES = {"ServingRuntime": "servingruntime.yaml", "InferenceService": "inferenceservice.yaml"}


def manifest(kind: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((KSERVE / FILES[kind]).read_text(encoding="utf-8"))
    return document


def errors(kind: str, document: dict[str, Any]) -> list[str]:
    """Every place ``document`` breaks KServe's schema for ``kind``."""
    validator = jsonschema.Draft202012Validator({**SCHEMA, **SCHEMA["kinds"][kind]})
    return [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def runtime_container() -> dict[str, Any]:
    (container,) = manifest("ServingRuntime")["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


@pytest.mark.parametrize("kind", list(FILES))
def test_manifest_is_valid_against_kserves_schema(kind: str) -> None:
    document = manifest(kind)
    assert (document["apiVersion"], document["kind"]) == (API_VERSIONS[kind], kind)
    assert errors(kind, document) == []


def test_the_schema_catches_a_misspelt_field_a_wrong_type_and_a_missing_field() -> None:
    runtime = manifest("ServingRuntime")
    runtime["spec"]["supportedModelFormat"] = runtime["spec"].pop("supportedModelFormats")
    assert any(
        "'supportedModelFormat' was unexpected" in e for e in errors("ServingRuntime", runtime)
    )
    service = manifest("InferenceService")
    service["spec"]["predictor"]["model"]["storageUri"] = ["gs://a", "gs://b"]
    assert any("storageUri" in e and "not of type 'string'" in e
               for e in errors("InferenceService", service))  # fmt: skip
    del service["spec"]["predictor"]["model"]["modelFormat"]
    assert any("'modelFormat' is a required property" in e
               for e in errors("InferenceService", service))  # fmt: skip


def test_the_schema_comes_from_kserve_0_21_0() -> None:
    assert "kserve 0.21.0" in SCHEMA["$comment"]
    # The few types the SDK names but does not ship are all outside what we write.
    assert set(SCHEMA["unresolved"]) <= {
        "KnativeAddressable", "KnativeCondition", "KnativeDevServingPkgApisServingV1TrafficTarget",
        "V1Time", "V1beta1MetricQuantity",
    }  # fmt: skip


def test_runtime_container_is_a_valid_kubernetes_container() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "relu-serve"},
        "spec": {"containers": [runtime_container()]},
    }
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)


def test_runtime_serves_onnx_over_v2_http_and_grpc() -> None:
    spec = manifest("ServingRuntime")["spec"]
    assert [f["name"] for f in spec["supportedModelFormats"]] == ["onnx"]
    assert spec["protocolVersions"] == ["v2", "grpc-v2"]
    container = runtime_container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    settings = env(container)
    assert container["ports"][0]["name"] == "http1"  # KServe sends HTTP to the first port
    assert ports == {"http1": int(settings["RELU_SERVE_PORT"]), "grpc": 8001}
    assert settings["RELU_SERVE_GRPC_PORT"] == "8001"
    assert settings["RELU_SERVE_HOST"] == "0.0.0.0"
    probes = {name: container[name]["httpGet"] for name in
              ("startupProbe", "livenessProbe", "readinessProbe")}  # fmt: skip
    assert {name: probe["path"] for name, probe in probes.items()} == {
        "startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz",
    }  # fmt: skip
    assert {probe["port"] for probe in probes.values()} == {ports["http1"]}
    assert set(container["resources"]) == {"requests", "limits"}


def test_runtime_env_names_only_real_settings() -> None:
    names = {name.removeprefix("RELU_SERVE_").lower() for name in env(runtime_container())}
    assert names - set(Settings.model_fields) == set()


def test_inference_service_uses_the_runtime_and_its_model_path() -> None:
    service, runtime = manifest("InferenceService"), manifest("ServingRuntime")
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] == "v2"
    formats = {(f["name"], f.get("version")) for f in runtime["spec"]["supportedModelFormats"]}
    assert (model["modelFormat"]["name"], model["modelFormat"].get("version")) in formats
    # The storage initializer puts a one-file storageUri at /mnt/models/<its name>.
    path = PurePosixPath(env(runtime_container())["RELU_SERVE_MODEL_PATH"])
    assert path.parent == PurePosixPath("/mnt/models")
    assert path.name == PurePosixPath(model["storageUri"]).name
    annotations = service["metadata"]["annotations"]
    # Two ports need a plain Deployment: Knative (Serverless mode) allows one.
    assert annotations["serving.kserve.io/deploymentMode"] == "RawDeployment"


def test_a_grace_period_covers_the_graceful_shutdown() -> None:
    predictor = manifest("InferenceService")["spec"]["predictor"]
    settings = env(runtime_container())
    budget = float(settings["RELU_SERVE_SHUTDOWN_DRAIN_S"]) + float(
        settings["RELU_SERVE_GRACEFUL_SHUTDOWN_S"]
    )
    assert predictor["terminationGracePeriodSeconds"] > budget
