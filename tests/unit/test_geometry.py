"""The geometry package on small hand-built graphs whose regions are known in closed form."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from service.classifier.geometry import walk
from service.classifier.geometry.feature import Geometry
from service.classifier.geometry.graph import Network
from service.classifier.geometry.local import local_map, pattern_id, region_ball
from service.classifier.model import Classifier
from service.config import Settings
from service.errors import DeadlineExceeded, GeometryUnavailable, InvalidInput


def graph(nodes: list, weights: dict[str, Any], shape=(1, 2, 2)) -> bytes:
    """A model from input (N, *shape) to logits, float32 initializers, opset 17."""
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()]
    proto = helper.make_model(
        helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *shape])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
            inits,
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    return proto.SerializeToString()


def hinge_network(lanes_w2: list[list[float]]) -> Network:
    """logits = W2 relu(x0 - (0.25, 0.5, 0.75)) + (0, 0.6): kinks at x0 = 0.25, 0.5, 0.75."""
    nodes = [
        helper.make_node("Flatten", ["input"], ["f"], name="/flat/Flatten", axis=1),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["z"], name="/fc1/Gemm", transB=1),
        helper.make_node("Relu", ["z"], ["r"], name="/act/Relu"),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"], name="/fc2/Gemm", transB=1),
    ]
    w1 = np.zeros((3, 4))
    w1[:, 0] = 1
    weights = {"w1": w1, "b1": [-0.25, -0.5, -0.75], "w2": lanes_w2, "b2": [0.0, 0.6]}
    return Network.from_bytes(graph(nodes, weights), (1, 2, 2))


def corner(x0: float) -> np.ndarray:
    return np.array([[[x0, 0.0], [0.0, 0.0]]])


@pytest.mark.parametrize("lanes", [1, 3, 64])
def test_the_walk_finds_the_kinks_exactly(lanes: int) -> None:
    network = hinge_network([[1, 1, 0], [0, 0, 0]])  # the third unit feeds nothing
    found = walk.walk(
        network, corner(0.0), corner(1.0), max_breakpoints=100, timeout_s=60, lanes=lanes
    )
    assert found.starts.tolist() == pytest.approx([0, 0.25, 0.5, 0.75], abs=1e-15)
    assert walk.linear_piece_starts(found).tolist() == [0, 1, 2]  # 0.75 bends nothing
    assert walk.decisions(found) == [(0.0, 1), (pytest.approx(0.675), 0)]
    assert walk.affine_error(network, corner(0.0), corner(1.0), found) < 1e-15
    assert found.max_abs_error < 1e-15
    assert found.slopes[:, 0].tolist() == [0, 1, 2, 2]


def test_the_walk_is_bounded_by_budget_and_deadline() -> None:
    network = hinge_network([[1, 1, 1], [0, 0, 0]])
    with pytest.raises(InvalidInput, match="more than 2 activation-pattern boundaries"):
        walk.walk(network, corner(0.0), corner(1.0), max_breakpoints=2, timeout_s=60, lanes=1)
    with pytest.raises(DeadlineExceeded, match="after 1 breakpoints"):
        walk.walk(network, corner(0.0), corner(1.0), max_breakpoints=9, timeout_s=0, lanes=1)


def test_the_local_map_and_ball_of_a_hinge() -> None:
    network = hinge_network([[1, 2, 3], [0, 0, 0]])
    x = corner(0.6)
    local = local_map(network, x)
    assert local.weights[0].ravel().tolist() == [3, 0, 0, 0]  # units 1 and 2 on
    assert local.bias.tolist() == pytest.approx([-0.25 - 1.0, 0.6])
    assert local.max_abs_error < 1e-15
    ball = region_ball(local.switches, x.size)
    assert ball.radius == pytest.approx(0.1)  # x0 = 0.5 is nearest
    assert ball.ties == 0
    assert ball.nearest is not None
    assert (ball.nearest.layer, ball.nearest.unit) == ("act", (1,))
    assert ball.nearest.normal.tolist() == [-1, 0, 0, 0]


def test_relu_at_zero_is_decided_by_the_tangent_going_forward() -> None:
    network = hinge_network([[1, 1, 1], [0, 0, 0]])
    x = corner(0.5)[None]
    up, down = (np.array([s, 0, 0, 0.0]).reshape(1, 1, 1, 2, 2) for s in (1, -1))
    assert network.run(x).switches[0].state.tolist() == [[True, False, False]]  # torch: off at 0
    assert network.run(x, up, mode="forward").switches[0].state.tolist() == [[True, True, False]]
    assert network.run(x, down, mode="forward").switches[0].state.tolist() == [[True, False, False]]
    assert region_ball(local_map(network, corner(0.5)).switches, 4).ties == 1


def pool_network() -> Network:
    nodes = [
        helper.make_node(
            "MaxPool", ["input"], ["p"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Flatten", ["p"], ["logits"], name="/flat/Flatten", axis=1),
    ]
    return Network.from_bytes(graph(nodes, {}), (1, 2, 2))


def test_max_pool_ties_first_maximum_at_a_point_steepest_going_forward() -> None:
    network = pool_network()
    x = np.ones((1, 1, 2, 2))
    assert network.run(x).switches[0].state.tolist() == [[0]]
    direction = np.array([0, 0, 1, 0.5]).reshape(1, 1, 1, 2, 2)
    assert network.run(x, direction, mode="forward").switches[0].state.tolist() == [[2]]
    ball = region_ball(local_map(network, x[0]).switches, 4)
    assert (ball.radius, ball.ties) == (0.0, 3)


def test_the_pool_ball_is_half_the_gap_over_root_two() -> None:
    network = pool_network()
    x = np.array([[[2.0, 1.0], [0.0, 0.0]]])
    local = local_map(network, x)
    ball = region_ball(local.switches, 4)
    assert ball.radius == pytest.approx(1 / np.sqrt(2))
    assert ball.nearest is not None
    assert (ball.nearest.kind, ball.nearest.unit, ball.nearest.rival) == ("maxpool", (0, 0, 0), 1)
    inside = pattern_id(local.switches)
    step = ball.nearest.normal.reshape(x.shape)
    assert pattern_id(network.run((x + 0.999 * ball.radius * step)[None]).switches) == inside
    assert pattern_id(network.run((x + 1.001 * ball.radius * step)[None]).switches) != inside


def conv_graph(activation: list) -> bytes:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node(
            "Conv", ["input", "w", "b"], ["c"], name="/conv/Conv", pads=[1, 0, 2, 1], strides=[2, 1]
        ),
        *activation,
        helper.make_node("Flatten", ["a"], ["f"], name="/flat/Flatten", axis=1),
        helper.make_node("MatMul", ["f", "m"], ["mm"], name="/fc/MatMul"),
        helper.make_node("Sub", ["mm", "k"], ["logits"], name="/fc/Sub"),
    ]
    weights = {
        "w": rng.standard_normal((3, 2, 3, 2)),
        "b": rng.standard_normal(3),
        "m": rng.standard_normal((3 * 3 * 5, 4)),  # conv out: (3, 3, 5)
        "k": rng.standard_normal(4),
    }
    return graph(nodes, weights, shape=(2, 5, 5))


def unary(op: str, **attrs: Any) -> list:
    return [helper.make_node(op, ["c"], ["a"], name=f"/act/{op}", **attrs)]


SMOOTH = {
    "Sigmoid": unary("Sigmoid"),
    "Tanh": unary("Tanh"),
    "Elu": unary("Elu", alpha=0.7),
    "gelu": [
        helper.make_node(
            "Constant", [], ["two"], value=numpy_helper.from_array(np.array(2.0, np.float32))
        ),
        helper.make_node("Div", ["c", "two"], ["h"], name="/act/Div"),
        helper.make_node("Erf", ["h"], ["e"], name="/act/Erf"),
        helper.make_node("Mul", ["c", "e"], ["a"], name="/act/Mul"),
    ],
}


@pytest.mark.parametrize(
    ("name", "nodes"),
    [("Relu", unary("Relu")), ("LeakyRelu", unary("LeakyRelu", alpha=0.1)), *SMOOTH.items()],
)
def test_values_match_the_onnx_reference_and_tangents_finite_differences(
    name: str, nodes: list
) -> None:
    data = conv_graph(nodes)
    network = Network.from_bytes(data, (2, 5, 5))
    assert network.piecewise_linear == (name not in SMOOTH)
    x = np.random.default_rng(1).standard_normal((3, 2, 5, 5))
    outputs: Any = ReferenceEvaluator(onnx.load_from_string(data)).run(
        None, {"input": x.astype(np.float32)}
    )
    expected = np.asarray(outputs[0])
    assert np.abs(network.logits(x) - expected).max() < 1e-4
    local = local_map(network, x[0])
    eps = 1e-6
    basis = np.eye(x[0].size).reshape(-1, *x[0].shape)
    numeric = (network.logits(x[0] + eps * basis) - network.logits(x[0] - eps * basis)) / (2 * eps)
    assert np.abs(local.weights.reshape(4, -1) - numeric.T).max() < 1e-6
    assert local.max_abs_error < 1e-12


def test_unsupported_ops_are_named() -> None:
    nodes = [
        helper.make_node("Softsign", ["input"], ["s"], name="/act/Softsign"),
        helper.make_node("Conv", ["s", "w"], ["c"], name="/conv/Conv", group=2),
        helper.make_node("Flatten", ["c"], ["logits"], name="/flat/Flatten", axis=1),
    ]
    data = graph(nodes, {"w": np.ones((2, 1, 1, 1))}, shape=(2, 2, 2))
    with pytest.raises(GeometryUnavailable) as caught:
        Network.from_bytes(data, (2, 2, 2))
    assert "unsupported ops Conv (grouped, dilated, auto-padded or not 2D), Softsign" in str(
        caught.value
    )
    with pytest.raises(GeometryUnavailable, match="onnx cannot read the model file"):
        Network.from_bytes(b"not a model", (1, 2, 2))


def test_load_checks_the_file_and_onnx_runtime(dry_run_model: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    shutil.copy(dry_run_model, model)
    classifier = Classifier(model)
    geometry = Geometry.load(classifier, Settings(model_path=model))
    assert geometry.network.piecewise_linear
    model.write_bytes(model.read_bytes() + b"\n")
    with pytest.raises(GeometryUnavailable, match="changed since it was loaded"):
        Geometry.load(classifier, Settings(model_path=model))


def test_load_refuses_an_evaluator_that_disagrees_with_onnx_runtime(
    dry_run_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    classifier = Classifier(dry_run_model)
    original = Network.logits
    monkeypatch.setattr(Network, "logits", lambda self, x: original(self, x) + 1e-3)
    with pytest.raises(GeometryUnavailable, match=r"differs from ONNX Runtime by 0\.001"):
        Geometry.load(classifier, Settings(model_path=dry_run_model))


def test_the_plane_of_a_hinge_shows_its_regions_and_decision_boundary() -> None:
    from service.classifier.geometry import plane

    network = hinge_network([[1, 1, 1], [0, 0, 0]])
    side = np.array([[[0.0, 1.0], [0.0, 0.0]]])  # a direction no unit reads
    cells, labels = plane.sample(
        network, corner(0.0), corner(1.0), side, grid=42, span=1.0, timeout_s=60
    )
    u = np.linspace(0, 1, 42)  # no sample on the label tie at u = 0.675
    assert cells.max() + 1 == 4  # the kinks at 0.25, 0.5, 0.75 cut the plane in four
    assert (cells == cells[0]).all()  # nothing changes along v
    expected = np.searchsorted([0.25, 0.5, 0.75], u, side="left")  # on a kink the unit is off
    assert np.unique(cells[0], return_inverse=True)[1].tolist() == expected.tolist()
    logits0 = np.maximum(u - 0.25, 0) + np.maximum(u - 0.5, 0) + np.maximum(u - 0.75, 0)
    assert labels[0].tolist() == np.where(logits0 > 0.6, 0, 1).tolist()
    png = plane.render(cells, labels)
    assert png.startswith(b"\x89PNG")


def test_dense_and_im2col_convolutions_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.classifier.geometry import graph as graph_module

    data = conv_graph(unary("Relu"))
    dense = Network.from_bytes(data, (2, 5, 5))
    monkeypatch.setattr(graph_module, "DENSE_CONV_ENTRIES", 0)
    windows = Network.from_bytes(data, (2, 5, 5))
    assert "dense" in dense.nodes[0].attrs
    assert "dense" not in windows.nodes[0].attrs
    x = np.random.default_rng(2).standard_normal((4, 2, 5, 5))
    assert np.abs(dense.logits(x) - windows.logits(x)).max() < 1e-12
    a, b = local_map(dense, x[0]), local_map(windows, x[0])
    assert np.abs(a.weights - b.weights).max() < 1e-12
