"""The set-up `make serve` and `make test` run: torch's CPU build only, serving without torch."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO

spec = importlib.util.spec_from_file_location("torch_source", REPO / "deploy" / "torch_source.py")
assert spec is not None
assert spec.loader is not None
torch_source = importlib.util.module_from_spec(spec)
spec.loader.exec_module(torch_source)

VERSION = torch_source.pinned_torch(REPO / "constraints.txt")
INDEX = "https://download.pytorch.org/whl/cpu"
MAKE = shutil.which("make")


def wheel_in(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"")
    return folder


def test_the_pin_is_read_from_constraints() -> None:
    assert VERSION == "2.13.0"


def test_a_local_cpu_wheel_wins_and_no_index_is_added(tmp_path: Path) -> None:
    wheels = wheel_in(tmp_path / "w", f"torch-{VERSION}+cpu-cp311-cp311-linux_x86_64.whl")
    assert torch_source.pip_args(
        INDEX, VERSION, tmp_path / "none", {"find-links": [str(wheels)]}
    ) == [
        "--find-links",
        str(wheels),
    ]
    assert torch_source.pip_args(INDEX, VERSION, wheels, {}) == ["--find-links", str(wheels)]


def test_without_one_the_cpu_index_joins_the_configured_indexes(tmp_path: Path) -> None:
    # A CUDA wheel or another version does not count: pip would still fetch PyPI's torch.
    wheels = wheel_in(tmp_path / "w", f"torch-{VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl")
    wheel_in(wheels, "torch-2.12.0+cpu-cp311-cp311-linux_x86_64.whl")
    config = {"extra-index-url": ["file:///mirror/simple"], "find-links": [str(wheels)]}
    assert torch_source.pip_args(INDEX, VERSION, wheels, config) == [
        "--extra-index-url",
        "file:///mirror/simple",
        "--extra-index-url",
        INDEX,
    ]
    assert torch_source.pip_args("", VERSION, wheels, config) == []  # TORCH_INDEX_URL=: PyPI


def test_pip_config_is_read_whatever_its_scope() -> None:
    listing = (
        "global.extra-index-url='file:///a/simple file:///b/simple'\n"
        ":env:.find-links='/opt/wheels'\n"
        "global.cert='/etc/ssl/certs/ca-certificates.crt'\n"
    )
    fake = [sys.executable, "-c", f"print({listing!r}, end='')", "--"]
    assert torch_source.pip_config(fake) == {
        "extra-index-url": ["file:///a/simple", "file:///b/simple"],
        "find-links": ["/opt/wheels"],
        "cert": ["/etc/ssl/certs/ca-certificates.crt"],
    }


@pytest.mark.slow
def test_pip_resolves_the_cpu_build_without_cuda_packages(tmp_path: Path) -> None:
    """pip's own resolver, run dry with the arguments the Makefile passes: torch +cpu and no
    nvidia-* package. Needs a local CPU wheel (no index is reached from the test machine)."""
    script = REPO / "deploy" / "torch_source.py"
    args = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True
    ).stdout.split()
    if args[:1] != ["--find-links"]:
        pytest.skip(f"no local torch {VERSION}+cpu wheel here; the Makefile would use {args}")
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"),
            *("--quiet", "--report", str(report), "-c", str(REPO / "constraints.txt")),
            *args,
            "torch",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    chosen = {
        i["metadata"]["name"].lower(): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    assert chosen["torch"] == f"{VERSION}+cpu"
    assert not [name for name in chosen if name.startswith("nvidia")], chosen


def make_n(*args: str) -> str:
    assert MAKE is not None
    done = subprocess.run(
        [MAKE, "-n", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(MAKE is None, reason="needs make")
def test_make_serve_with_a_model_installs_no_torch_and_sets_the_allocator(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    commands = make_n("serve", f"VENV={tmp_path / 'venv'}", f"MODEL={model}")
    assert "-e ." in commands
    assert "export" not in commands
    assert "torch" not in commands
    serve = [line for line in commands.splitlines() if "-m service" in line]
    assert serve == [
        "MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=268435456 "
        f"RELU_SERVE_MODEL_PATH={model} {tmp_path / 'venv'}/bin/python -m service"
    ]


@pytest.mark.skipif(MAKE is None, reason="needs make")
def test_make_model_installs_the_export_extra_with_torchs_cpu_source(tmp_path: Path) -> None:
    commands = make_n("model", f"VENV={tmp_path / 'venv'}", "TORCH_INDEX_URL=https://example/cpu")
    install = next(line for line in commands.splitlines() if "[export]" in line)
    assert "deploy/torch_source.py --index-url 'https://example/cpu'" in install
