"""The training report beside the model: JSON figures, and a PNG of the curves and the confusion
matrix drawn from them by model_export.report_png (in a child process: see Painter)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from model_export.train import TrainResult

#: How long the report's painter may take once the figures reach it (it has imported matplotlib
#: by then): generous, for a busy machine; it draws one figure in ~0.5 s here.
PAINT_TIMEOUT_S = 300.0


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def document(
    result: TrainResult,
    summary: dict[str, Any],
    matrix: np.ndarray,
    labels: tuple[str, ...],
    dead: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """The report's JSON document: ``summary`` with the curves, confusion matrix and dead units."""
    return {
        **summary,
        "averaged_epochs": list(result.averaged_epochs),
        "averaged_val_accuracy": result.val_accuracy,
        "epochs": [asdict(e) for e in result.history],
        "labels": list(labels),
        "confusion_matrix": matrix.tolist(),
        "dead_units": dead,
    }


def json_path_for(model_path: Path) -> Path:
    return model_path.with_suffix(".report.json")


def png_path_for(model_path: Path) -> Path:
    return model_path.with_suffix(".report.png")


class Painter:
    """``python -m model_export.report_png`` started at once: it imports matplotlib (~0.8 s) on
    the other core while the model trains on one thread, then draws the PNG from the figures
    sent to it while the model is exported. Stopped (it exits on an empty input) if the export
    fails before that."""

    def __init__(self) -> None:
        # A file, not a pipe: never fills, never blocks; closed by stop().
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", "model_export.report_png"],
            stdin=subprocess.PIPE,
            stderr=self._errors,
        )

    def draw(self, path: Path, report: dict[str, Any]) -> None:
        """Send the figures to draw into ``path`` (returns at once)."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"path": str(path), "report": report}).encode())
        self._process.stdin.close()

    def wait(self) -> None:
        """Wait for the PNG; RuntimeError with the painter's own message if it failed."""
        if self._process.wait(timeout=PAINT_TIMEOUT_S):
            self._errors.seek(0)
            message = self._errors.read().decode(errors="replace").strip()
            raise RuntimeError(f"drawing the report failed: {message}")

    def stop(self) -> None:
        """End the painter if it still runs (idempotent)."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        self._errors.close()
