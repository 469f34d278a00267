"""model_export.report's Painter: the report PNG drawn by a child process, and its failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_export import report


def document() -> dict:
    epochs = [
        {
            "epoch": e,
            "train_loss": 1 / e,
            "train_accuracy": 0.5,
            "val_loss": 1 / e,
            "val_accuracy": 0.6,
        }
        for e in (1, 2, 3)
    ]
    return {
        "test_accuracy": 0.75,
        "averaged_epochs": [2, 3],
        "epochs": epochs,
        "labels": ["a", "b"],
        "confusion_matrix": [[3, 1], [0, 4]],
    }


def test_the_painter_draws_the_png(tmp_path: Path) -> None:
    painter = report.Painter()
    try:
        painter.draw(tmp_path / "r.png", document())
        painter.wait()
    finally:
        painter.stop()
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_failed_drawing_raises_with_the_painters_message(tmp_path: Path) -> None:
    painter = report.Painter()
    try:
        painter.draw(tmp_path / "missing" / "r.png", document())
        with pytest.raises(RuntimeError, match=r"drawing the report failed: (?s:.*)No such file"):
            painter.wait()
    finally:
        painter.stop()


def test_a_painter_stopped_before_drawing_ends_quietly() -> None:
    painter = report.Painter()
    painter.stop()
    painter.stop()  # idempotent
