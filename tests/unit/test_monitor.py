"""The ReLU monitor's counting without HTTP: store, window, bins, reset, collector, OOD maths."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from scipy.special import logsumexp

from service.classifier.model import Classifier
from service.classifier.monitor.counter import Counter, _bins
from service.classifier.monitor.metrics import ReluCollector
from service.classifier.monitor.ood import OodScorer, energy_score
from service.classifier.monitor.probe import Probe
from service.classifier.monitor.relu import ReluMonitor
from service.classifier.monitor.store import BINS, IMAGES, Layout, Store, prepare
from service.errors import OodUnavailable

UNITS = (8, 4)


def store(directory: Path, worker: str) -> Store:
    return Store(directory, Layout(UNITS), worker=worker)


def fired(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random((n, sum(UNITS))) < 0.3


def test_bins_put_a_fraction_on_a_bound_where_prometheus_le_does() -> None:
    units = np.array([20, 20])
    active = np.array([[0, 1], [2, 20], [3, 19]])
    # 0 -> bin 0; 1/20 = 0.05 (le 0.05) -> bin 0; 2/20 -> bin 1; 20/20 -> last; 3/20 -> 2
    assert _bins(active, units).tolist() == [[0, 0], [1, BINS - 1], [2, 18]]


def test_counts_of_two_workers_are_summed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a, b = store(tmp_path, "a"), store(tmp_path, "b")
    first, second = fired(rng, 5), fired(rng, 7)
    Counter(a, 0).add(first)
    Counter(b, 0).add(second, dropped=2)
    total, per_worker = a.total()
    layout = a.layout
    assert per_worker == [5, 7]
    assert total[IMAGES] == 12
    both = np.concatenate([first, second])
    assert total[layout.fires].tolist() == both.sum(axis=0).tolist()
    assert total[layout.active].tolist() == [both[:, :8].sum(), both[:, 8:].sum()]
    assert total[layout.hist].sum() == 12 * len(UNITS)
    assert total[1] == 2  # dropped


def test_the_window_keeps_the_last_images_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    s = store(tmp_path, "w")
    counter = Counter(s, window_images=4)
    images = fired(rng, 9)
    for start in (0, 1, 3, 6):  # batches of 1, 2, 3, 3 images
        counter.add(images[start : {0: 1, 1: 3, 3: 6, 6: 9}[start]])
    total, _ = s.total()
    last = images[-4:]
    assert total[IMAGES] == 4
    assert total[s.layout.fires].tolist() == last.sum(axis=0).tolist()
    hist = total[s.layout.hist].reshape(len(UNITS), BINS)
    assert hist.sum(axis=1).tolist() == [4, 4]
    counter.add(fired(rng, 10))  # a batch larger than the window replaces it
    assert s.total()[0][IMAGES] == 4


def test_a_reset_from_one_worker_clears_every_worker(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    a, b = store(tmp_path, "a"), store(tmp_path, "b")
    counter_b = Counter(b, window_images=3)
    Counter(a, 0).add(fired(rng, 4))
    counter_b.add(fired(rng, 3))
    a.reset()
    total, _ = a.total()
    assert not total.any()
    new = fired(rng, 2)
    counter_b.add(new)  # b's window from before the reset must not be taken out again
    total, per_worker = b.total()
    assert per_worker == [0, 2]
    assert (total[b.layout.fires] >= 0).all()
    assert total[b.layout.fires].tolist() == new.sum(axis=0).tolist()


def test_prepare_makes_the_directory_fresh(tmp_path: Path) -> None:
    Counter(store(tmp_path, "old"), 0).add(np.ones((1, sum(UNITS)), dtype=bool))
    prepare(tmp_path)
    assert store(tmp_path, "new").total()[1] == [0]


@pytest.fixture(scope="module")
def probe(dry_run_model: Path) -> Probe:
    return Probe(Classifier(dry_run_model, providers=["cpu"]))


def test_probe_layers_and_activations(probe: Probe) -> None:
    assert [layer.name for layer in probe.layers] == ["act1", "act2", "act3", "act_fc"]
    assert [layer.units for layer in probe.layers] == [2048, 1024, 512, 128]
    acts = probe.run(np.zeros((3, 1, 8, 8), dtype=np.float32))
    assert acts["act_fc"].shape == (3, 128)
    assert (acts["act1"] >= 0).all()


def test_sampling_and_the_collector(probe: Probe, tmp_path: Path) -> None:
    monitor = ReluMonitor(
        probe,
        Store(tmp_path, Layout([u.units for u in probe.layers])),
        sample_every=3,
        window_images=0,
    )
    try:
        batch = np.random.default_rng(3).normal(size=(10, 1, 8, 8)).astype(np.float32)
        monitor.observe(batch)  # images 0, 3, 6, 9
        monitor.observe(batch[:4])  # seen 10..13: image 12 -> index 2
        assert monitor.flush(timeout_s=30)
        figures = monitor.figures()
        assert figures.images == 5
        expected = np.concatenate([batch[[0, 3, 6, 9]], batch[[2]]])
        acts = probe.run(expected)
        fc = figures.layers[3]
        assert fc.fires.tolist() == (acts["act_fc"] > 0).sum(axis=0).tolist()
        assert fc.dead == np.flatnonzero((acts["act_fc"] > 0).sum(axis=0) == 0).tolist()

        registry = CollectorRegistry()
        registry.register(ReluCollector(monitor))
        text = generate_latest(registry).decode()
        assert 'relu_serve_relu_units{layer="act_fc"} 128.0' in text
        assert f'relu_serve_relu_dead_units{{layer="act_fc"}} {float(len(fc.dead))}' in text
        assert 'relu_serve_relu_active_fraction_bucket{layer="act1",le="+Inf"} 5.0' in text
        assert 'relu_serve_relu_active_fraction_count{layer="act3"} 5.0' in text
        mean_sum = (acts["act2"] > 0).mean(axis=1).sum()
        value = registry.get_sample_value("relu_serve_relu_active_fraction_sum", {"layer": "act2"})
        assert value == pytest.approx(mean_sum)
        buckets = [
            registry.get_sample_value(
                "relu_serve_relu_active_fraction_bucket", {"layer": "act_fc", "le": le}
            )
            for le in ("0.05", "0.5", "1", "+Inf")
        ]
        assert None not in buckets
        assert buckets == sorted(b or 0 for b in buckets)
        assert buckets[-1] == 5
    finally:
        monitor.stop()


def test_hamming_is_the_minimum_popcount_of_the_xor(probe: Probe, dry_run_model: Path) -> None:
    scorer = OodScorer.load(Classifier(dry_run_model, providers=["cpu"]), probe)
    rng = np.random.default_rng(4)
    queries = rng.integers(0, 256, (70, 16), dtype=np.uint8)  # more than one chunk
    reference = np.load(dry_run_model.with_suffix(".patterns.npy"))
    expected = [
        min(
            bin(int.from_bytes(q.tobytes(), "big") ^ int.from_bytes(r.tobytes(), "big")).count("1")
            for r in reference
        )
        for q in queries
    ]
    assert scorer.hamming(queries).tolist() == expected
    assert scorer.hamming(reference[:5]).tolist() == [0] * 5


def test_energy_is_minus_logsumexp() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -5.0]], dtype=np.float32)
    assert energy_score(logits) == pytest.approx(-logsumexp(logits.astype(float), axis=1))


def test_patterns_that_do_not_match_the_hash_are_refused(
    probe: Probe, dry_run_model: Path, tmp_path: Path
) -> None:
    model = tmp_path / dry_run_model.name
    shutil.copy(dry_run_model, model)
    classifier = Classifier(model, providers=["cpu"])
    with pytest.raises(OodUnavailable, match="cannot be read"):
        OodScorer.load(classifier, probe)
    patterns = model.with_suffix(".patterns.npy")
    data = bytearray(dry_run_model.with_suffix(".patterns.npy").read_bytes())
    data[-1] ^= 1
    patterns.write_bytes(bytes(data))
    assert hashlib.sha256(data).hexdigest() != classifier.metadata.ood_patterns.sha256  # type: ignore[union-attr]
    with pytest.raises(OodUnavailable, match="does not match the SHA-256"):
        OodScorer.load(classifier, probe)
