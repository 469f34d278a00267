"""Shared fixtures: models exported once per session by the real pipeline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def export(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m model_export` as a user would; return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "model_export", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
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
