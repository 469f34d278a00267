"""Shared fixtures: models exported once per session by the real pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Apps built by tests serve no gRPC port unless a test asks for one (RELU_SERVE_GRPC_PORT's
# default, 8001, may be taken on a shared machine; the v2 tests pick free ports).
os.environ.setdefault("RELU_SERVE_GRPC_PORT", "0")

#: Limit of one export. The default training takes ~10 s on an idle 2-core machine and under a
#: minute with both cores busy (README, "The model"); this leaves room for a machine slower
#: still, inside pytest's 600 s per test (which counts the fixture's set-up).
EXPORT_TIMEOUT_S = 540


def export(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m model_export` as a user would; return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "model_export", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=EXPORT_TIMEOUT_S,
    )


@pytest.fixture(scope="session")
def dry_run_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --dry-run export: untrained but complete (metadata, dynamic batch, parity-checked)."""
    out = tmp_path_factory.mktemp("dry") / "relu_cnn.onnx"
    done = export(out, "--dry-run")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default export (digits, default epochs and seed): what `make model` builds."""
    out = tmp_path_factory.mktemp("trained") / "relu_cnn.onnx"
    done = export(out)
    assert done.returncode == 0, done.stderr
    return out
