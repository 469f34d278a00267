"""The OOD reference the export writes beside the model: file, size, hash in the metadata, rows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model_export import data, patterns
from service.classifier.model import Classifier
from service.classifier.monitor.probe import Probe
from service.metadata import ModelMetadata

#: The budget the issue sets for the digits model's patterns.
MAX_BYTES = 28 * 1024


def metadata(model: Path) -> ModelMetadata:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map)


def test_the_patterns_file_and_its_hash_in_the_metadata(dry_run_model: Path) -> None:
    ref = metadata(dry_run_model).ood_patterns
    assert ref is not None
    path = dry_run_model.with_suffix(".patterns.npy")
    assert ref.file == path.name == "relu_cnn.patterns.npy"
    assert ref.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (ref.layer, ref.units) == ("act2", 1024)
    patterns = np.load(path, allow_pickle=False)
    assert patterns.dtype == np.uint8
    assert patterns.shape == (ref.patterns, 128)
    assert len(np.unique(patterns, axis=0)) == len(patterns)  # distinct rows only
    assert path.stat().st_size <= MAX_BYTES


def test_the_trained_models_patterns_are_its_training_images(trained_model: Path) -> None:
    """As many as the budget holds, each the act2 pattern ONNX Runtime computes for a training
    image (torch computed them; on the default model not one unit differs)."""
    path = trained_model.with_suffix(".patterns.npy")
    assert path.stat().st_size <= MAX_BYTES
    report = json.loads(trained_model.with_suffix(".report.json").read_text())
    splits = data.split(data.load("digits", 28), seed=report["seed"])
    classifier = Classifier(trained_model, providers=["cpu"])
    batch = classifier.metadata.normalize(splits.train.x * 16)  # [0, 1] back to raw 0..16
    fired = Probe(classifier).run(batch, ("act2",))["act2"] > 0
    ours = {row.tobytes() for row in np.packbits(fired, axis=1)}
    stored = np.load(path)
    assert {row.tobytes() for row in stored} <= ours
    # 1,257 distinct patterns of 128 bytes do not fit: the budget is filled.
    assert len(stored) == (MAX_BYTES - 128) // 128 < len(ours)


def test_the_selection_keeps_typical_patterns_not_outliers() -> None:
    """Facility location: from two tight clusters and one far outlier, two rows pick one
    member of each cluster, never the outlier that a farthest-point choice would take."""
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 2, (2, 64), dtype=np.uint8)
    rows = []
    for centre in centres:
        for _ in range(10):
            flipped = centre.copy()
            flipped[rng.integers(0, 64, 2)] ^= 1
            rows.append(flipped)
    rows.append(1 - centres[0])  # the outlier: every bit of cluster 0 flipped
    packed = np.unique(np.packbits(np.array(rows), axis=1), axis=0)
    chosen = patterns.select(packed, 2)
    assert len(chosen) == 2
    outlier = np.packbits(1 - centres[0])
    near = patterns.distances(chosen, np.packbits(centres, axis=1))
    assert not (chosen == outlier).all(axis=1).any()
    assert sorted(near.argmin(axis=1).tolist()) == [0, 1]
    assert near.min(axis=1).max() <= 2
    assert np.array_equal(patterns.select(packed, len(packed) + 1), packed)
