"""`python -m model_export` as a newcomer runs it: progress in a log, your own folder, safe defaults."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from sklearn.datasets import load_digits

from service.metadata import ModelMetadata
from tests.conftest import EXPORT_TIMEOUT_S, export

ROOT = Path(__file__).resolve().parents[2]


def labels(path: Path) -> tuple[str, ...]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map).labels


def digit_folder(root: Path) -> Path:
    """Two classes of digits as dark ink on white 24x24 PNGs, plus what tools leave behind."""
    digits = load_digits()
    for label in (3, 7):
        for i, image in enumerate(digits.images[digits.target == label][:6]):
            pixels = 255 - np.kron(image, np.ones((3, 3))) * 255 / 16
            for where in (root / f"digit{label}", root / ".ipynb_checkpoints"):
                where.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels.astype(np.uint8)).save(where / f"{i}.png")
    (root / "digit3" / ".DS_Store.png").write_bytes(b"not an image")  # would stop the run
    return root


def run_here(cwd: Path, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The exporter started in ``cwd`` (this checkout's code), stdout a pipe, not a terminal."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "model_export", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=EXPORT_TIMEOUT_S,
    )


def test_without_a_terminal_each_epoch_prints_one_line(tmp_path: Path) -> None:
    done = export(tmp_path / "m.onnx", "--epochs", "3", "--threads", "2")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 3, done.stdout
    pattern = (
        r"epoch (\d)/3: loss \d+\.\d{4}, accuracy \d+\.\d\d%, "
        r"validation accuracy \d+\.\d\d%, \d+\.\d s"
    )
    for number, line in enumerate(lines, start=1):
        match = re.fullmatch(pattern, line)
        assert match is not None, line
        assert int(match.group(1)) == number
    assert "\r" not in done.stdout + done.stderr  # no progress bar redrawn into the log


def test_the_output_folder_is_made_when_missing(tmp_path: Path) -> None:
    # As on a fresh clone, where models/ does not exist yet (the report is drawn meanwhile).
    done = run_here(tmp_path, "--dry-run", "--out", "new/deeper/m.onnx")
    assert done.returncode == 0, done.stderr
    made = tmp_path / "new" / "deeper"
    assert sorted(p.name for p in made.iterdir()) == [
        "m.onnx",
        "m.patterns.npy",
        "m.report.json",
        "m.report.png",
    ]


def test_threads_must_be_positive(tmp_path: Path) -> None:
    done = export(tmp_path / "m.onnx", "--threads", "0")
    assert done.returncode == 2
    assert "--threads 0: must be at least 1" in done.stderr


def test_your_folder_ignores_hidden_entries_and_expands_home(tmp_path: Path) -> None:
    digit_folder(tmp_path / "home" / "my digits")
    done = run_here(
        tmp_path,
        "--data",
        "folder:~/my digits",
        "--out",
        "~/out/mine.onnx",
        "--dry-run",
        "--image-size",
        "12",
        home=tmp_path / "home",
    )
    assert done.returncode == 0, done.stderr
    assert labels(tmp_path / "home" / "out" / "mine.onnx") == ("digit3", "digit7")


def test_the_served_model_is_replaced_only_when_named(tmp_path: Path) -> None:
    served = tmp_path / "models" / "relu_cnn.onnx"
    served.parent.mkdir()
    served.write_bytes(b"the model make serve serves")
    digit_folder(tmp_path / "mine")
    own = run_here(tmp_path, "--data", "folder:mine", "--epochs", "1", "--image-size", "12")
    assert own.returncode == 0, own.stderr
    assert labels(tmp_path / "models" / "folder-mine.onnx") == ("digit3", "digit7")
    assert "models/folder-mine.onnx" in own.stdout
    dry = run_here(tmp_path, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (tmp_path / "models" / "dry-run.onnx").exists()
    assert served.read_bytes() == b"the model make serve serves"
    asked = run_here(
        tmp_path, "--data", "folder:mine", "--dry-run", "--out", "models/relu_cnn.onnx"
    )
    assert asked.returncode == 0, asked.stderr
    assert labels(served) == ("digit3", "digit7")
