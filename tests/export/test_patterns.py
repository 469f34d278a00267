"""The OOD reference the export writes beside the model: file, size, hash in the metadata, rows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model_export import data
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
    assert (ref.layer, ref.units) == ("act_fc", 128)
    patterns = np.load(path, allow_pickle=False)
    assert patterns.dtype == np.uint8
    assert patterns.shape == (ref.patterns, 16)
    assert len(np.unique(patterns, axis=0)) == len(patterns)  # distinct rows only


def test_the_trained_models_patterns_are_its_training_images(trained_model: Path) -> None:
    """Within budget, and ONNX Runtime's act_fc patterns of the training images are the stored
    ones (torch computed those; on the default model not one unit differs)."""
    path = trained_model.with_suffix(".patterns.npy")
    assert path.stat().st_size <= MAX_BYTES
    report = json.loads(trained_model.with_suffix(".report.json").read_text())
    splits = data.split(data.load("digits", 28), seed=report["seed"])
    classifier = Classifier(trained_model, providers=["cpu"])
    batch = classifier.metadata.normalize(splits.train.x * 16)  # [0, 1] back to raw 0..16
    fired = Probe(classifier).run(batch, ("act_fc",))["act_fc"] > 0
    ours = {row.tobytes() for row in np.packbits(fired, axis=1)}
    stored = {row.tobytes() for row in np.load(path)}
    assert ours == stored
    assert len(stored) <= len(splits.train.y)
