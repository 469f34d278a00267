"""The README's curl examples run against a live server; its Configuration lists every setting."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import Settings
from tests.live_server import live_server

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: A ```bash block right after an HTML comment `<!-- readme-test -->` is run by this test;
#: after `<!-- readme-test api-keys -->`, against a server that requires the README's key.
EXAMPLE = re.compile(r"<!-- readme-test -->\n```bash\n(.*?)```", re.DOTALL)
EXAMPLES = EXAMPLE.findall(README)
KEYED = re.findall(r"<!-- readme-test api-keys -->\n```bash\n(.*?)```", README, re.DOTALL)
README_KEY = "example-key-0123456789"


def test_the_readme_has_examples_for_each_endpoint() -> None:
    joined = "\n".join(EXAMPLES)
    for path in ("/predict", "/model", "/readyz", "/explain", "/regions"):
        assert path in joined, path
    assert "-F files=@" in joined
    assert "application/x-npy" in joined


@pytest.fixture(scope="module")
def server(dry_run_model: Path) -> Iterator[str]:
    with live_server(dry_run_model) as base:
        yield base


@pytest.mark.slow
@pytest.mark.parametrize("block", EXAMPLES, ids=[b.split("\n")[0][:60] for b in EXAMPLES])
def test_readme_example_runs(server: str, block: str) -> None:
    script = block.replace("http://127.0.0.1:8000", server)
    assert script != block, "the example must talk to http://127.0.0.1:8000"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
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
