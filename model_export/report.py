"""The training report beside the model: JSON figures and a PNG of curves and confusion matrix."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np

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
    fig, (ax_loss, ax_acc, ax_cm) = plt.subplots(1, 3, figsize=(15, 4.5))
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
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
