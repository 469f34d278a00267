"""The classifier package on tiny ONNX graphs built with onnx.helper: model, preprocess, predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from service.classifier.model import Classifier, warmup_sizes
from service.classifier.predict import parse_options
from service.classifier.preprocess import prepare
from service.classifier.probabilities import softmax, top_k
from service.errors import InvalidInput, ModelLoadError, ServiceError, TooLarge
from service.metadata import ModelMetadata

CUDA = "CUDAExecutionProvider" in ort.get_available_providers()

META = ModelMetadata(
    name="tiny",
    version="0.0.1",
    labels=("a", "b", "c"),
    input_shape=(1, 4, 4),
    input_range=(0.0, 255.0),
    mean=0.25,
    std=0.5,
    dataset="none",
    split_sizes={"train": 1, "val": 1, "test": 1},
    test_accuracy=0.5,
    activation="relu",
    seed=0,
    opset=17,
    torch_version="none",
    created="2026-01-01T00:00:00+00:00",
)


def tiny(
    path: Path,
    *,
    metadata: ModelMetadata | None = META,
    input_name: str = "input",
    height: int = 4,
    ir_version: int = 9,
) -> Path:
    """input (N, 1, H, 4) -> Flatten -> MatMul W (H*4 x 3) -> logits (N, 3)."""
    weights = np.arange(height * 4 * 3, dtype=np.float32).reshape(height * 4, 3) / 100
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", [input_name], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 1, height, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=ir_version
    )
    for key, value in (metadata.to_props() if metadata else {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)
    return path


@pytest.fixture
def model(tmp_path: Path) -> Classifier:
    return Classifier(tiny(tmp_path / "tiny.onnx"), providers=("cpu",), intra_op_threads=1)


def test_loads_metadata_and_reports_runtime(tmp_path: Path) -> None:
    path = tiny(tmp_path / "m.onnx")
    model = Classifier(
        path, providers=("cuda", "cpu"), intra_op_threads=3, graph_optimization_level="basic"
    )
    assert model.metadata == META
    assert model.image_shape == (4, 4)
    assert model.session_info.providers_requested == ("cuda", "cpu")
    assert model.session_info.providers_active[0] == ("cuda" if CUDA else "cpu")
    assert model.session_info.intra_op_threads == 3
    assert model.session_info.inter_op_threads == 1
    assert model.session_info.graph_optimization_level == "basic"
    assert len(model.sha256) == 64


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.mkdir(), p)[1], "is a directory"),
        (lambda p: (p.write_bytes(b"this is not onnx"), p)[1], "not a loadable ONNX model"),
        (lambda p: (p.write_bytes(b""), p)[1], "not a loadable ONNX model"),
        (lambda p: tiny(p, metadata=None), "carries no relu-serve metadata"),
        (lambda p: tiny(p, input_name="pixels"), "expected one input 'input'"),
        (lambda p: tiny(p, height=5), "input shape [1, 5, 4] does not match"),
        (
            lambda p: tiny(p, ir_version=99),
            "not a loadable ONNX model (Unsupported model IR version",
        ),
    ],
)
def test_unservable_files_raise_one_message_naming_the_path(
    tmp_path: Path, make, fragment: str
) -> None:
    path = make(tmp_path / "model.onnx")
    with pytest.raises(ModelLoadError) as caught:
        Classifier(path)
    assert caught.value.message.startswith(f"{path}: ")
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message


def test_unreadable_path(tmp_path: Path) -> None:
    # chmod 000 does not stop root (CI), so provoke the OS error through a file used as a folder.
    blocker = tiny(tmp_path / "m.onnx")
    with pytest.raises(ModelLoadError, match=r"m.onnx/inner.onnx: cannot read \(Not a directory\)"):
        Classifier(blocker / "inner.onnx")


@pytest.mark.skipif(CUDA, reason="this ONNX Runtime build has CUDA")
def test_strict_providers_refuse_a_silent_fallback(tmp_path: Path) -> None:
    path = tiny(tmp_path / "m.onnx")
    with pytest.raises(ModelLoadError, match="'cuda' was requested first but ONNX Runtime runs on"):
        Classifier(path, providers=("cuda", "cpu"), strict_providers=True)
    assert Classifier(path, providers=("cpu", "cuda"), strict_providers=True)


@pytest.mark.skipif(CUDA, reason="this ONNX Runtime build has CUDA")
def test_no_available_provider(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="none of the providers cuda is available"):
        Classifier(tiny(tmp_path / "m.onnx"), providers=("cuda",))


def test_normalisation_follows_the_metadata(model: Classifier) -> None:
    raw = np.array([[0, 255, 127.5, 63.75]] * 4, dtype=np.float32)
    expected = ((raw / 255.0) - 0.25) / 0.5
    np.testing.assert_allclose(
        prepare(raw, model.metadata, max_images=1)[0, 0], expected, rtol=1e-6
    )
    assert prepare(raw, model.metadata, max_images=1).dtype == np.float32
    assert (
        prepare(raw, model.metadata, normalized=True, max_images=1)[0, 0].tolist() == raw.tolist()
    )


@pytest.mark.parametrize("shape", [(4, 4), (3, 4, 4), (3, 1, 4, 4)])
def test_prepare_accepts_the_three_layouts(model: Classifier, shape: tuple[int, ...]) -> None:
    batch = prepare(np.ones(shape, dtype=np.uint8), model.metadata, max_images=3)
    assert batch.shape == (1 if len(shape) == 2 else 3, 1, 4, 4)


@pytest.mark.parametrize(
    ("array", "error", "fragment"),
    [
        (np.zeros((4,)), InvalidInput, "rank 1"),
        (np.zeros((2, 4, 5)), InvalidInput, "image shape [1, 4, 5]"),
        (np.zeros((0, 4, 4)), InvalidInput, "no images"),
        (np.full((4, 4), np.nan), InvalidInput, "NaN or Infinity"),
        (np.array([["a"] * 4] * 4), InvalidInput, "must be numbers"),
        (np.zeros((5, 4, 4)), TooLarge, "5 images in one request exceeds the limit of 4"),
    ],
)
def test_prepare_refuses(model: Classifier, array: np.ndarray, error: type, fragment: str) -> None:
    with pytest.raises(error) as caught:
        prepare(array, model.metadata, max_images=4)
    assert isinstance(caught.value, ServiceError)
    assert fragment in caught.value.message


def test_predict_checks_dtype_and_shape_before_ort(model: Classifier) -> None:
    with pytest.raises(InvalidInput, match="float32"):
        model.predict(np.zeros((1, 1, 4, 4), dtype=np.float64))
    with pytest.raises(InvalidInput, match=r"shape \(N>=1, 1, 4, 4\)"):
        model.predict(np.zeros((1, 1, 4, 3), dtype=np.float32))
    with pytest.raises(InvalidInput, match=r"shape \(N>=1"):
        model.predict(np.zeros((0, 1, 4, 4), dtype=np.float32))
    logits = model.predict(np.ones((2, 1, 4, 4), dtype=np.float32))
    assert logits.shape == (2, 3)


def test_warmup_sizes() -> None:
    assert warmup_sizes(1) == (1,)
    assert warmup_sizes(16) == (1, 8, 16)
    assert warmup_sizes(1024) == (1, 8, 64, 512, 1024)


def test_softmax_is_stable_and_sums_to_one() -> None:
    logits = np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]])
    probabilities = softmax(logits)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities[1], 1 / 3)
    assert probabilities[0, 0] > probabilities[0, 1] > probabilities[0, 2]


def test_top_k_orders_by_probability_and_ties_by_index() -> None:
    probabilities = np.array([[0.1, 0.5, 0.1, 0.3], [0.25, 0.25, 0.25, 0.25]])
    assert top_k(probabilities, 3).tolist() == [[1, 3, 0], [0, 1, 2]]
    assert top_k(probabilities, 4)[:, 0].tolist() == probabilities.argmax(axis=1).tolist()


@pytest.mark.parametrize("k", [0, 4, -1])
def test_top_k_must_be_within_the_labels(k: int) -> None:
    with pytest.raises(InvalidInput, match=f"top_k must be between 1 and 3 .*got {k}"):
        parse_options({"top_k": k}, images=False, num_classes=3)
