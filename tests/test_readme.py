"""The README's curl examples run against a live server; its Configuration lists every setting."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.api.conftest import wait_ready
from tests.live_server import free_port, live_server

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: A ```bash block right after an HTML comment `<!-- readme-test -->` is run by this test;
#: after `<!-- readme-test api-keys -->`, against a server that requires the README's key.
EXAMPLE = re.compile(r"<!-- readme-test -->\n```bash\n(.*?)```", re.DOTALL)
EXAMPLES = EXAMPLE.findall(README)
KEYED = re.findall(r"<!-- readme-test api-keys -->\n```bash\n(.*?)```", README, re.DOTALL)
README_KEY = "example-key-0123456789"
#: The first /predict example with the answer shown under it.
SHOWN = re.compile(r"```bash\n(curl [^`]*?/predict \\\n[^`]*?)```\n\n```json\n(.*?)```", re.DOTALL)


def test_the_readme_has_examples_for_each_endpoint() -> None:
    joined = "\n".join(EXAMPLES)
    for path in ("/predict", "/model", "/readyz", "/explain", "/regions", "/v2/models/"):
        assert path in joined, path
    for client in ("tritonclient.http", "tritonclient.grpc"):
        assert client in joined, client
    assert "-F files=@" in joined
    assert "application/x-npy" in joined


@pytest.fixture(scope="module")
def server(dry_run_model: Path) -> Iterator[tuple[str, str]]:
    """The live server's HTTP address (host:port) and gRPC address."""
    grpc = f"127.0.0.1:{free_port()}"
    with live_server(dry_run_model, grpc_port=grpc.split(":")[1]) as base:
        yield base.removeprefix("http://"), grpc


@pytest.mark.slow
@pytest.mark.parametrize("block", EXAMPLES, ids=[b.split("\n")[0][:60] for b in EXAMPLES])
def test_readme_example_runs(server: tuple[str, str], block: str) -> None:
    http, grpc = server
    script = block.replace("127.0.0.1:8000", http).replace("127.0.0.1:8001", grpc)
    assert script != block, "the example must talk to 127.0.0.1:8000 (HTTP) or :8001 (gRPC)"
    # The project's virtualenv: .venv in a checkout that ran `make`, this interpreter here.
    script = script.replace(".venv/bin/python", sys.executable)
    before = set(ROOT.iterdir())
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(ROOT.iterdir()) == before, "examples write their files under a temporary folder"
    body = json.loads(done.stdout)
    assert "detail" not in body, body
    if "/predict" in block:
        assert body["predictions"], body
        assert {"label", "index", "confidence", "top_k"} <= set(body["predictions"][0])


@pytest.fixture(scope="module")
def keyed_server(dry_run_model: Path) -> Iterator[str]:
    with live_server(dry_run_model, api_keys=README_KEY) as base:
        yield base


@pytest.mark.slow
@pytest.mark.parametrize("block", KEYED)
def test_readme_api_key_example_runs(keyed_server: str, block: str) -> None:
    assert README_KEY in block
    script = block.replace("http://127.0.0.1:8000", keyed_server)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["value"] == [0.0, 2.0]
    keyless = subprocess.run(
        ["bash", "-c", script.replace(README_KEY, "not-the-key-000000")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(keyless.stdout)["detail"].startswith("an API key is required")


def test_configuration_lists_every_setting() -> None:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for name in Settings.model_fields:
        assert f"`RELU_SERVE_{name.upper()}`" in section, name


@pytest.mark.slow
def test_the_shown_predict_answer_is_the_default_models(trained_model: Path) -> None:
    """What the README shows is what a fresh `make serve` answers (the label and confidence;
    another CPU may differ in the last digits)."""
    found = SHOWN.search(README)
    assert found is not None
    body = re.search(r"-d '(.*)'", found.group(1), re.DOTALL)
    assert body is not None
    shown = json.loads(found.group(2))
    with TestClient(create_app(Settings(model_path=trained_model))) as client:
        wait_ready(client)
        answer = client.post("/predict", json=json.loads(body.group(1))).json()
    assert answer["model"] == shown["model"]
    for got, expected in zip(answer["predictions"], shown["predictions"], strict=True):
        assert got["label"] == expected["label"]
        assert got["confidence"] == pytest.approx(expected["confidence"], abs=1e-3)
