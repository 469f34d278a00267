"""The inference runner: calibration of the inline limit, and both paths give the same logits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from service.classifier import inference as inference_module
from service.classifier.inference import Inference
from service.classifier.model import Classifier
from service.config import Settings


def test_calibrate_sets_one_inline_limit_for_both_paths(dry_run_model: Path) -> None:
    settings = Settings(model_path=dry_run_model, max_batch_size=64)
    inference = Inference(Classifier.from_settings(settings), settings)
    inline = inference.calibrate()
    assert inline in (0, 1, 8, 64)  # the batch sizes it times, or none
    assert inference.inline_max_images == inline
    assert inference.batcher is not None
    assert inference.batcher.inline_max_items == inline


@pytest.mark.parametrize(("cpus", "inline"), [(1, 64), (4, 0)])
def test_a_worker_with_one_cpu_runs_longer_batches_inline(
    dry_run_model: Path, monkeypatch: pytest.MonkeyPatch, cpus: int, inline: int
) -> None:
    """With one CPU the ORT thread cannot overlap the loop: a 1 ms batch runs inline there,
    and goes to the thread where the worker has CPUs to spare."""
    monkeypatch.setattr("service.config.usable_cpus", lambda: cpus)
    monkeypatch.setattr(inference_module, "_timed", lambda run, batch: 0.001)
    settings = Settings(model_path=dry_run_model, max_batch_size=64)
    inference = Inference(Classifier.from_settings(settings), settings)
    assert inference.calibrate() == inline


def test_batched_and_direct_paths_give_the_same_logits(dry_run_model: Path) -> None:
    batch = np.random.default_rng(0).normal(size=(20, 1, 8, 8)).astype(np.float32)

    async def run(batching: bool) -> np.ndarray:
        settings = Settings(model_path=dry_run_model, batching=batching)
        inference = Inference(Classifier.from_settings(settings), settings)
        inference.start()
        try:
            return await inference.logits(batch)
        finally:
            await inference.stop()

    np.testing.assert_array_equal(asyncio.run(run(True)), asyncio.run(run(False)))
