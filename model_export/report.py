"""The training report beside the model: JSON figures and a PNG of curves and confusion matrix."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from model_export.train import TrainResult


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def write(
    model_path: Path,
    result: TrainResult,
    summary: dict[str, Any],
    matrix: np.ndarray,
    labels: tuple[str, ...],
    dead: dict[str, dict[str, float]],
) -> tuple[Path, Path]:
    """Write ``<model>.report.json`` and ``<model>.report.png``; return both paths."""
    json_path = model_path.with_suffix(".report.json")
    png_path = model_path.with_suffix(".report.png")
    report = {
        **summary,
        "best_epoch": result.best_epoch,
        "epochs": [asdict(e) for e in result.history],
        "labels": list(labels),
        "confusion_matrix": matrix.tolist(),
        "dead_units": dead,
    }
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    _plot(png_path, result, matrix, labels, summary.get("test_accuracy", 0.0))
    return json_path, png_path


def _plot(
    path: Path, result: TrainResult, matrix: np.ndarray, labels: tuple[str, ...], test_acc: float
) -> None:
    epochs = [e.epoch for e in result.history]
    # A bare Agg figure, no pyplot (its import and backend set-up cost 0.5 s for nothing here).
    fig = Figure(figsize=(15, 4.5))
    FigureCanvasAgg(fig)
    ax_loss, ax_acc, ax_cm = fig.subplots(1, 3)
    ax_loss.plot(epochs, [e.train_loss for e in result.history], label="train")
    ax_loss.plot(epochs, [e.val_loss for e in result.history], label="validation")
    ax_loss.set(title="loss", xlabel="epoch", yscale="log")
    ax_loss.legend()
    ax_acc.plot(epochs, [e.train_accuracy for e in result.history], label="train")
    ax_acc.plot(epochs, [e.val_accuracy for e in result.history], label="validation")
    ax_acc.axvline(
        result.best_epoch, color="grey", linestyle=":", label=f"best epoch {result.best_epoch}"
    )
    ax_acc.set(title="accuracy", xlabel="epoch")
    ax_acc.legend()
    ax_cm.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax_cm.text(j, i, str(count), ha="center", va="center", fontsize=7)
    ticks = range(len(labels))
    ax_cm.set(
        title=f"test confusion (accuracy {test_acc:.2%})",
        xlabel="predicted",
        ylabel="true",
        xticks=ticks,
        yticks=ticks,
        xticklabels=labels,
        yticklabels=labels,
    )
    # Fixed margins: tight_layout measures every label's extent, about 1 s on this figure.
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.12, top=0.92, wspace=0.22)
    fig.savefig(path, dpi=90)
