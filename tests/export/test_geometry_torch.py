"""The geometry endpoints' exact claims, checked against the trained torch model (autograd)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from model_export import data
from model_export.net import ReluCNN
from service.classifier.geometry import walk
from service.classifier.geometry.graph import Network
from service.classifier.geometry.local import local_map, pattern_id, region_ball
from service.metadata import ModelMetadata

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def network(trained_model: Path) -> Network:
    return Network.from_bytes(trained_model.read_bytes(), (1, 8, 8))


@pytest.fixture(scope="module")
def meta(trained_model: Path) -> ModelMetadata:
    props = {p.key: p.value for p in onnx.load(str(trained_model)).metadata_props}
    return ModelMetadata.from_props(props)


@pytest.fixture(scope="module")
def torch_model(trained_model: Path) -> ReluCNN:
    """The trained network rebuilt in torch, float64, from the served file's initializers."""
    proto = onnx.load(str(trained_model))
    model = ReluCNN((1, 8, 8), 10)
    weights = {
        t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer
    }
    model.load_state_dict(weights)
    return model.double().eval()


@pytest.fixture(scope="module")
def digits(meta: ModelMetadata) -> np.ndarray:
    """The test split, normalised as the service does it (float32, held in float64)."""
    test = data.split(data.load("digits", 8), seed=meta.seed).test.x.astype(np.float32)
    return ((test - np.float32(meta.mean)) / np.float32(meta.std)).astype(np.float64)


def test_weights_are_the_autograd_jacobian_at_50_test_digits(
    network: Network, torch_model: ReluCNN, digits: np.ndarray
) -> None:
    for x in digits[:50]:
        local = local_map(network, x)
        jacobian = torch.autograd.functional.jacobian(torch_model, torch.from_numpy(x[None]))
        expected = jacobian.numpy().reshape(10, 1, 8, 8)
        scale = np.abs(expected).max()
        assert np.abs(local.weights - expected).max() <= 1e-6 * scale
        with torch.no_grad():
            logits = torch_model(torch.from_numpy(x[None])).numpy()[0]
        assert np.abs(local.logits - logits).max() <= 1e-9 * np.abs(logits).max()
        assert np.abs(local.weights.reshape(10, -1) @ x.ravel() + local.bias - logits).max() <= 1e-9


def _pattern(network: Network, x: np.ndarray, direction: np.ndarray | None = None) -> str:
    if direction is None:
        return pattern_id(network.run(x[None]).switches)
    return pattern_id(network.run(x[None], direction[None, None], mode="forward").switches)


def test_the_ball_holds_one_pattern_and_its_nearest_surface_ends_it(
    network: Network, digits: np.ndarray
) -> None:
    rng = np.random.default_rng(0)
    checked = 0
    for x in digits:
        local = local_map(network, x)
        ball = region_ball(local.switches, x.size)
        if ball.ties:
            continue
        assert ball.nearest is not None
        inside = pattern_id(local.switches)
        for _ in range(20):
            u = rng.standard_normal(x.shape)
            assert _pattern(network, x + 0.99 * ball.radius * u / np.linalg.norm(u)) == inside
        normal = ball.nearest.normal.reshape(x.shape)
        assert _pattern(network, x + 0.99 * ball.radius * normal) == inside
        assert _pattern(network, x + 1.01 * ball.radius * normal) != inside
        checked += 1
        if checked == 10:
            break
    assert checked == 10


def test_ties_are_counted_on_a_flat_background_digit(network: Network, digits: np.ndarray) -> None:
    """Identical 3x3 patches of the flat background give identical conv outputs: such a digit
    sits on max-pool ties, so its radius is 0, and a step along the tied surface's normal
    (either way) leaves the pattern the first-maximum rule picked."""
    flat = next(x for x in digits if _identical_patches_in_one_window(x[0]))
    local = local_map(network, flat)
    ball = region_ball(local.switches, flat.size)
    assert ball.ties > 0
    assert ball.radius == 0
    assert ball.nearest is not None
    assert ball.nearest.kind == "maxpool"
    assert ball.nearest.rival is not None
    normal = ball.nearest.normal.reshape(flat.shape)
    here = pattern_id(local.switches)
    sides = {_pattern(network, flat + step * normal) for step in (-1e-6, 1e-6)}
    assert sides - {here}


def _identical_patches_in_one_window(image: np.ndarray) -> bool:
    padded = np.pad(image, 1, constant_values=0.0)
    patches = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))  # (8, 8, 3, 3)
    for i in range(0, 8, 2):
        for j in range(0, 8, 2):
            window = patches[i : i + 2, j : j + 2].reshape(4, 9)
            if len({row.tobytes() for row in window}) < 4:
                return True
    return False


def _neighbour(found: walk.Regions, t: float, seen: bytes, piece: int, eps: float) -> bool:
    """Whether ``t`` is within ``eps`` of an end of ``piece`` and ``seen`` is the pattern of the
    piece beyond that end."""
    ends = found.ends
    if piece + 1 < len(found.starts) and ends[piece] - t <= eps:
        return found.digests[piece + 1] == seen
    return piece > 0 and t - found.starts[piece] <= eps and found.digests[piece - 1] == seen


@pytest.mark.parametrize(("a", "b"), [(0, 1), (5, 17)])
def test_the_walk_is_exact_between_two_test_digits(
    network: Network, digits: np.ndarray, a: int, b: int
) -> None:
    start, end = digits[a], digits[b]
    found = walk.walk(network, start, end, max_breakpoints=20_000, timeout_s=600)
    assert 100 < len(found.starts) < 20_000
    assert walk.affine_error(network, start, end, found) <= 1e-9
    assert found.max_abs_error <= 1e-9
    assert all(p != q for p, q in zip(found.digests, found.digests[1:], strict=False))
    # a dense sample: each point's pattern is the pattern of the piece the walk puts it in
    samples = (np.arange(20_001) + 0.5) / 20_001  # 20,001 points, each inside [0, 1)
    direction = end - start
    points = start + samples[:, None, None, None] * direction
    piece = np.searchsorted(found.starts, samples, side="right") - 1
    missed = []
    for chunk in range(0, len(samples), 500):
        tangents = np.broadcast_to(
            direction, (len(points[chunk : chunk + 500]), 1, *direction.shape)
        )
        trace = network.run(
            points[chunk : chunk + 500], np.ascontiguousarray(tangents), mode="forward"
        )
        rows = walk.pattern_rows(trace.switches)
        for offset, row in enumerate(rows):
            i = chunk + offset
            if walk.digest(row) != found.digests[piece[i]]:
                missed.append((samples[i], walk.digest(row), piece[i]))
    # A crossing is located to float64 rounding: -z / dz with a tiny slope dz moves by ~1e-9
    # in t. A sample that close to a breakpoint may see the neighbouring piece's pattern, and
    # must; any other disagreement is a pattern the walk missed.
    unexplained = [t for t, seen, k in missed if not _neighbour(found, t, seen, k, 1e-8)]
    assert not unexplained, f"{len(unexplained)} samples outside the walk's pattern: {unexplained}"
    assert len(missed) <= 3, f"{len(missed)} samples within 1e-8 of a breakpoint"
