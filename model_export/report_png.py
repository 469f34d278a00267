"""The report's PNG: loss and accuracy curves and the test confusion matrix, drawn from the
report's JSON document. ``python -m model_export.report_png`` reads ``{"path": ..., "report":
...}`` on stdin and draws it; an empty input ends it without drawing (see report.Painter)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def draw(path: Path, report: dict[str, Any]) -> None:
    history = report["epochs"]
    epochs = [e["epoch"] for e in history]
    # A bare Agg figure, no pyplot (its import and backend set-up cost 0.5 s for nothing here).
    fig = Figure(figsize=(15, 4.5))
    FigureCanvasAgg(fig)
    ax_loss, ax_acc, ax_cm = fig.subplots(1, 3)
    ax_loss.plot(epochs, [e["train_loss"] for e in history], label="train")
    ax_loss.plot(epochs, [e["val_loss"] for e in history], label="validation")
    ax_loss.set(title="loss", xlabel="epoch", yscale="log")
    ax_loss.legend()
    ax_acc.plot(epochs, [e["train_accuracy"] for e in history], label="train")
    ax_acc.plot(epochs, [e["val_accuracy"] for e in history], label="validation")
    first, last = report["averaged_epochs"]
    ax_acc.axvspan(first, last, color="grey", alpha=0.15, label=f"averaged: epochs {first}-{last}")
    ax_acc.set(title="accuracy", xlabel="epoch")
    ax_acc.legend()
    matrix = np.array(report["confusion_matrix"])
    ax_cm.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax_cm.text(j, i, str(count), ha="center", va="center", fontsize=7)
    labels = report["labels"]
    ticks = range(len(labels))
    ax_cm.set(
        title=f"test confusion (accuracy {report.get('test_accuracy', 0.0):.2%})",
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


def main() -> int:
    data = sys.stdin.buffer.read()
    if not data:
        return 0
    request = json.loads(data)
    draw(Path(request["path"]), request["report"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
