"""Settings from RELU_SERVE_* variables, and how `relu-serve` stops on bad settings or models."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.__main__ import main
from service.config import Settings, usable_cpus


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RELU_SERVE_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = Settings()
    assert settings.model_path == Path("models/relu_cnn.onnx")
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.providers == ["cuda", "cpu"]
    assert settings.strict_providers is False
    assert settings.graph_optimization_level == "all"
    assert settings.log_level == "info"


def field_docs() -> dict[str, str]:
    """Each Settings field's docstring, read from the source (they document the fields)."""
    tree = ast.parse(Path(sys.modules[Settings.__module__].__file__ or "").read_text())
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings"]
    docs = {}
    for node, after in zip(cls.body, cls.body[1:], strict=False):
        documented = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and documented:
            docs[node.target.id] = str(after.value.value)  # type: ignore[attr-defined]
    return docs


def test_every_field_is_documented() -> None:
    docs = field_docs()
    for name in Settings.model_fields:
        assert docs.get(name, "").strip(), f"Settings.{name} has no docstring"


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELU_SERVE_PORT", "9001")
    monkeypatch.setenv("RELU_SERVE_PROVIDERS", " CPU , cuda ")
    monkeypatch.setenv("RELU_SERVE_STRICT_PROVIDERS", "true")
    monkeypatch.setenv("RELU_SERVE_MODEL_PATH", "/srv/m.onnx")
    monkeypatch.setenv("RELU_SERVE_OVERLOAD_STATUS", "429")
    monkeypatch.setenv("RELU_SERVE_BATCHING", "false")
    settings = Settings()
    assert settings.overload_status == 429
    assert settings.batching is False
    assert settings.port == 9001
    assert settings.providers == ["cpu", "cuda"]
    assert settings.strict_providers is True
    assert settings.model_path == Path("/srv/m.onnx")


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("RELU_SERVE_PORT", "abc", "valid integer"),
        ("RELU_SERVE_PORT", "70000", "less than or equal to 65535"),
        ("RELU_SERVE_WORKERS", "0", "greater than or equal to 1"),
        ("RELU_SERVE_PROVIDERS", "tpu", "'cuda' or 'cpu'"),
        ("RELU_SERVE_PROVIDERS", "cpu,cpu", "must not repeat"),
        ("RELU_SERVE_PROVIDERS", "", "at least 1 item"),
        ("RELU_SERVE_GRAPH_OPTIMIZATION_LEVEL", "max", "'disabled', 'basic', 'extended' or 'all'"),
        ("RELU_SERVE_LOG_LEVEL", "loud", "'critical'"),
        ("RELU_SERVE_OVERLOAD_STATUS", "500", "503 or 429"),
        ("RELU_SERVE_MAX_BATCH_SIZE", "0", "greater than or equal to 1"),
        ("RELU_SERVE_REQUEST_TIMEOUT_MS", "0", "greater than 0"),
    ],
)
def test_invalid_values(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=fragment):
        Settings()


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().port = 1  # type: ignore[misc]


def test_threads_per_worker() -> None:
    assert Settings(intra_op_threads=3, workers=4).threads_per_worker == 3
    assert Settings(workers=1).threads_per_worker == usable_cpus()
    assert Settings(workers=64).threads_per_worker == max(1, usable_cpus() // 64)


def test_usable_cpus_respects_the_affinity_mask() -> None:
    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))


def test_invalid_setting_stops_start_up_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELU_SERVE_PORT", "abc")
    assert main() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("relu-serve: invalid setting RELU_SERVE_PORT='abc': ")
    assert "valid integer" in err


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no such file"),
        (b"not onnx", "not a loadable ONNX model"),
    ],
)
def test_unservable_model_stops_start_up_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    fragment: str,
) -> None:
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    monkeypatch.setenv("RELU_SERVE_MODEL_PATH", str(path))
    assert main() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"relu-serve: cannot serve the model: {path}: ")
    assert fragment in err


def test_python_m_service_exits_non_zero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELU_SERVE_")}
    env["RELU_SERVE_MODEL_PATH"] = str(tmp_path / "missing.onnx")
    done = subprocess.run(
        [sys.executable, "-m", "service"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"relu-serve: cannot serve the model: {tmp_path / 'missing.onnx'}: no such file "
        "(build it with `make model` or set RELU_SERVE_MODEL_PATH)"
    ]
