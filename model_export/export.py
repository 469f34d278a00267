"""ONNX export: dynamic batch axis, metadata stamped in, onnx.checker and ORT-vs-PyTorch parity."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from service.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from service.session import open_session

MIN_OPSET = 17
#: Parity contract between ONNX Runtime and PyTorch on the whole test set.
PARITY_MAX_ABS = 1e-4


class ExportError(Exception):
    """The exported model is not faithful to the trained one."""


def to_onnx(model: nn.Module, input_shape: tuple[int, int, int], opset: int) -> onnx.ModelProto:
    """Trace ``model`` into ONNX with a dynamic batch axis."""
    if opset < MIN_OPSET:
        raise ExportError(f"--opset {opset}: must be >= {MIN_OPSET}")
    model.eval()
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        (torch.zeros(1, *input_shape),),
        buffer,  # type: ignore[arg-type]  # torch writes to file objects too; its stub says paths
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )
    return onnx.load_from_string(buffer.getvalue())


def activation_outputs(proto: onnx.ModelProto, layers: list[str]) -> dict[str, str]:
    """Map each activation module (``act1``) to the tensor its node writes (``/act1/Relu_output_0``)."""
    found: dict[str, str] = {}
    for node in proto.graph.node:
        for layer in layers:
            if node.name.startswith(f"/{layer}/") and layer not in found:
                found[layer] = node.output[-1]
    missing = [layer for layer in layers if layer not in found]
    if missing:
        raise ExportError(f"activation layers not found in the ONNX graph: {', '.join(missing)}")
    return found


def stamp(proto: onnx.ModelProto, metadata: ModelMetadata) -> onnx.ModelProto:
    """Write our metadata into metadata_props and check the model."""
    del proto.metadata_props[:]
    for key, value in sorted(metadata.to_props().items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "relu-serve model_export"
    proto.doc_string = (
        f"{metadata.name} {metadata.version}: {metadata.activation} CNN on {metadata.dataset}"
    )
    onnx.checker.check_model(proto, full_check=True)
    return proto


def check_parity(proto: onnx.ModelProto, model: nn.Module, x: np.ndarray) -> float:
    """Run ORT and PyTorch on ``x`` (normalised, N x C x H x W); return max |difference|.

    Raises ExportError when logits differ by more than PARITY_MAX_ABS or any argmax differs.
    """
    session = open_session(proto.SerializeToString())
    ours = session.run([OUTPUT_NAME], {INPUT_NAME: x.astype(np.float32)})[0]
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    max_abs = float(np.abs(ours - reference).max()) if len(x) else 0.0
    mismatched = int((ours.argmax(1) != reference.argmax(1)).sum())
    if max_abs > PARITY_MAX_ABS or mismatched:
        raise ExportError(
            f"ONNX Runtime disagrees with PyTorch: max |logit diff| {max_abs:.3g} "
            f"(limit {PARITY_MAX_ABS}), {mismatched} argmax mismatch(es) on {len(x)} images"
        )
    return max_abs


def save(proto: onnx.ModelProto, path: Path) -> None:
    """Write atomically: a crash mid-write never leaves a half model where the service looks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(proto.SerializeToString())
    tmp.replace(path)
