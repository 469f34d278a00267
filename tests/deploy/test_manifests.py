"""Static checks of the deployment files: Kubernetes schemas, compose, nginx, Dockerfile."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.config import Settings
from tests.deploy.conftest import REPO

K8S = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
DEFAULT = re.compile(r"^\$\{(RELU_SERVE_\w+):-([^}]*)\}$")


class UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc]
    """safe_load that refuses a key written twice in one mapping (PyYAML keeps the last one
    silently; Docker Compose refuses the file). Keys merged in with ``<<:`` may be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [key.value for key, _ in node.value
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge"]  # fmt: skip
        twice = sorted({str(key) for key in keys if keys.count(key) > 1})
        if twice:
            raise yaml.constructor.ConstructorError(
                None, None, f"keys given twice: {', '.join(twice)}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


def load(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)


def k8s(kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in map(load, K8S) if doc["kind"] == kind]
    return found


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    services: dict[str, Any] = load(REPO / "docker-compose.yml")["services"]
    return services


# ---- Kubernetes


@pytest.mark.parametrize("path", K8S, ids=[path.name for path in K8S])
def test_k8s_manifest_is_valid_against_the_bundled_schema(path: Path) -> None:
    kubernetes_validate.validate(load(path), kubernetes_validate.latest_version(), strict=True)


def test_k8s_validation_catches_a_misspelt_field() -> None:
    deployment = k8s("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesytem"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFilesytem"):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_k8s_kinds_are_all_there() -> None:
    kinds = {load(path)["kind"] for path in K8S}
    assert kinds == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}


def test_deployment_probes_limits_and_security() -> None:
    pod = k8s("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsUser"] != 0
    # the read-only root keeps /tmp writable for multipart spools
    assert [mount["mountPath"] for mount in container["volumeMounts"]] == ["/tmp"]
    env = {item["name"]: item["value"] for item in container["env"]}
    budget = float(env["RELU_SERVE_SHUTDOWN_DRAIN_S"]) + float(
        env["RELU_SERVE_GRACEFUL_SHUTDOWN_S"]
    )
    assert pod["terminationGracePeriodSeconds"] > budget


def test_service_hpa_and_pdb_select_the_deployment() -> None:
    deployment = k8s("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert k8s("Service")["spec"]["selector"].items() <= labels.items()
    assert k8s("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = k8s("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    port = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"]
    assert k8s("Service")["spec"]["ports"][0]["targetPort"] == port


# ---- docker compose


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    twice = tmp_path / "twice.yml"
    twice.write_text("environment:\n  RELU_SERVE_GRPC_PORT: '8001'\n  RELU_SERVE_GRPC_PORT: '0'\n")
    with pytest.raises(
        yaml.constructor.ConstructorError, match="keys given twice: RELU_SERVE_GRPC_PORT"
    ):
        load(twice)


def test_compose_service_has_port_healthcheck_restart_and_limits(compose: dict[str, Any]) -> None:
    service = compose["relu-serve"]
    assert service["ports"] == ["127.0.0.1:8000:8000", "127.0.0.1:8001:8001"]
    assert "/readyz" in " ".join(service["healthcheck"]["test"])
    assert service["restart"] == "unless-stopped"
    assert set(service["deploy"]["resources"]["limits"]) == {"cpus", "memory"}
    assert "profiles" not in service  # `docker compose up` starts it


def test_compose_documents_every_setting() -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    missing = [f"RELU_SERVE_{name.upper()}" for name in Settings.model_fields]
    missing = [variable for variable in missing if variable not in text]
    assert missing == [], "settings missing from docker-compose.yml"


def test_compose_defaults_are_the_service_defaults(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = compose["relu-serve"]["environment"]
    defaults = {
        match[1]: match[2] for value in environment.values() if (match := DEFAULT.match(str(value)))
    }
    # All but the fixed ones (model path, host, port, gRPC port) and those unset (threads, key
    # file, metrics and monitor directories, numba cache seed).
    assert len(defaults) >= len(Settings.model_fields) - 9
    for variable, value in defaults.items():
        monkeypatch.setenv(variable, value)
    from_compose = Settings(model_path=Path("unused"))
    for variable in defaults:
        monkeypatch.delenv(variable)
    ours = Settings(model_path=Path("unused"))
    assert from_compose == ours


def test_compose_stop_grace_period_covers_the_graceful_shutdown(compose: dict[str, Any]) -> None:
    service = compose["relu-serve"]
    grace_s = int(service["stop_grace_period"].removesuffix("s"))
    settings = Settings()
    assert grace_s > settings.shutdown_drain_s + settings.graceful_shutdown_s


def test_compose_gpu_profile_reserves_an_nvidia_gpu(compose: dict[str, Any]) -> None:
    gpu = compose["relu-serve-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["args"]["ORT_REQUIREMENT"].startswith("onnxruntime-gpu")
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert gpu["environment"]["RELU_SERVE_STRICT_PROVIDERS"] == "true"
    assert gpu["environment"]["RELU_SERVE_PROVIDERS"].startswith("cuda")


def test_compose_scale_profile_puts_replicas_behind_nginx(compose: dict[str, Any]) -> None:
    replica, nginx = compose["replica"], compose["nginx"]
    assert replica["profiles"] == nginx["profiles"] == ["scale"]
    assert "ports" not in replica  # reached through nginx only
    assert str(replica["deploy"]["replicas"]).startswith("${RELU_SERVE_REPLICAS:-")
    assert nginx["depends_on"]["replica"]["condition"] == "service_healthy"
    assert "./deploy/nginx:/etc/nginx/relu-serve:ro" in nginx["volumes"]
    nginx_conf = (REPO / "deploy" / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    assert "server replica:8000 resolve" in nginx_conf
    assert "include /etc/nginx/relu-serve/proxy.conf;" in nginx_conf
    proxy_conf = (REPO / "deploy" / "nginx" / "proxy.conf").read_text(encoding="utf-8")
    assert re.search(r"^proxy_next_upstream error timeout .*non_idempotent;$", proxy_conf, re.M)


# ---- Dockerfile


def dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined, comments dropped)."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in (line.strip() for line in lines if not line.lstrip().startswith("#")):
        if line.startswith("FROM "):
            current = stages.setdefault(line.split()[-1], [])
        current.append(line)
    return stages


def test_dockerfile_runtime_stage() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I)
    assert "<<" not in text  # no heredocs: the CI engine's built-in frontend lacks them
    stages = dockerfile_stages()
    runtime = stages[list(stages)[-1]]
    assert runtime[0] == "FROM python:3.11-slim-bookworm AS runtime"
    env = " ".join(line for line in runtime if line.startswith("ENV "))
    for setting in ("PYTHONUNBUFFERED=1", "MALLOC_MMAP_THRESHOLD_=", "MALLOC_TRIM_THRESHOLD_=",
                    "RELU_SERVE_HOST=0.0.0.0"):  # fmt: skip
        assert setting in env
    (user,) = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user)  # numeric, not root
    (health,) = [line for line in runtime if line.startswith("HEALTHCHECK ")]
    assert "/readyz" in health
    assert runtime[-1].startswith('CMD ["')  # exec form: the service gets SIGTERM itself
    assert not [line for line in runtime if line.startswith("RUN ")]  # no build tools, no pip
    assert "torch" not in " ".join(runtime)


def test_dockerfile_trains_in_the_builder_and_swaps_ort_for_gpu() -> None:
    stages = dockerfile_stages()
    assert "python -m model_export --out /models/relu_cnn.onnx" in " ".join(stages["trainer"])
    assert "ARG ORT_REQUIREMENT=onnxruntime" in stages["venv"]


def test_requirements_helper_swaps_onnxruntime() -> None:
    script = [sys.executable, str(REPO / "deploy" / "requirements.py")]
    done = subprocess.run(
        [*script, "--swap", "onnxruntime=onnxruntime-gpu[cuda,cudnn]"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert "onnxruntime-gpu[cuda,cudnn]" in lines
    assert not [line for line in lines if line.startswith(("onnxruntime>", "torch"))]
    bad = subprocess.run(
        [*script, "--swap", "onnxruntme=x"], capture_output=True, text=True, cwd=REPO
    )
    assert bad.returncode != 0
    assert "--swap onnxruntme: no such requirement" in bad.stderr


# ---- the v2 gRPC port, the same everywhere


def test_grpc_port_is_exposed_consistently(compose: dict[str, Any]) -> None:
    """Dockerfile ENV/EXPOSE, compose (env, ports, nginx), Kubernetes (container, Service) and
    the KServe runtime all name one gRPC port."""
    stages = dockerfile_stages()
    runtime = " ".join(stages[list(stages)[-1]])
    (port,) = re.findall(r"RELU_SERVE_GRPC_PORT=(\d+)", runtime)
    (exposed,) = re.findall(r"EXPOSE ([\d ]+)", runtime)
    assert port in exposed.split()
    assert Settings.model_fields["grpc_port"].default == int(port)
    for name in ("relu-serve", "relu-serve-gpu"):
        service = compose[name]
        assert service["environment"]["RELU_SERVE_GRPC_PORT"] == port
        assert [p for p in service["ports"] if p.endswith(f":{port}")], name
    assert compose["replica"]["environment"]["RELU_SERVE_GRPC_PORT"] == port
    nginx_conf = (REPO / "deploy" / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    assert f"server replica:{port} resolve" in nginx_conf
    assert re.search(r"listen 8081;\s+http2 on;", nginx_conf)
    assert "grpc_pass grpc://relu_serve_grpc;" in nginx_conf
    assert "127.0.0.1:8081:8081" in compose["nginx"]["ports"]
    (container,) = k8s("Deployment")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == int(port)
    (grpc,) = [p for p in k8s("Service")["spec"]["ports"] if p["name"] == "grpc"]
    assert grpc["targetPort"] == "grpc"
    assert grpc["appProtocol"] == "kubernetes.io/h2c"
    kserve = load(REPO / "deploy" / "kserve" / "servingruntime.yaml")
    (runtime_container,) = kserve["spec"]["containers"]
    kserve_ports = {p["name"]: p["containerPort"] for p in runtime_container["ports"]}
    assert kserve_ports["grpc"] == int(port)
