"""Probe: a second ONNX Runtime session on the served model with its activation layers as outputs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.classifier.model import PROVIDERS, Classifier
from service.errors import ModelLoadError
from service.metadata import INPUT_NAME, OUTPUT_NAME
from service.session import open_session


@dataclass(frozen=True)
class Layer:
    """One activation layer: its name (``act1``), the tensor it writes and units per image."""

    name: str
    tensor: str
    units: int


class Probe:
    """The served graph with every activation layer the metadata names added as an output.

    The outputs are added at load time (``onnx``), so models exported before the monitor existed
    work too. It runs beside the serving session, never instead of it: only sampled images and
    requests that ask for an OOD score pay for it.
    """

    def __init__(self, classifier: Classifier) -> None:
        outputs = classifier.metadata.activation_outputs
        if not outputs:
            raise ModelLoadError("the model's metadata names no activation layers")
        data = classifier.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != classifier.sha256:
            raise ModelLoadError(
                f"{classifier.path} changed since it was loaded; restart to serve the new file"
            )
        providers = [PROVIDERS[p] for p in classifier.session_info.providers_active]
        # One thread: the probe runs in the background and must not take the serving cores.
        self._session = open_session(
            _with_outputs(data, list(outputs.values())), providers=providers
        )
        self._tensors = dict(outputs)
        channels, height, width = classifier.metadata.input_shape
        probe = self.run(np.zeros((1, channels, height, width), dtype=np.float32))
        self.layers = tuple(
            Layer(name, tensor, int(probe[name].shape[1])) for name, tensor in outputs.items()
        )

    def run(
        self, batch: np.ndarray[Any, Any], layers: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """Activations (N, units) of ``layers`` (default: all) for a normalised batch, by name."""
        names = tuple(self._tensors) if layers is None else layers
        values = self._session.run([self._tensors[n] for n in names], {INPUT_NAME: batch})
        return {n: v.reshape(len(batch), -1) for n, v in zip(names, values, strict=True)}


def _with_outputs(data: bytes, tensors: list[str]) -> bytes:
    """The model with ``tensors`` added to the graph's outputs (logits stay the first)."""
    import onnx  # ~0.4 s to import: only in the warm-up thread, as the geometry feature does

    proto = onnx.load_from_string(data)
    present = {o.name for o in proto.graph.output}
    for name in tensors:
        if name not in present:
            proto.graph.output.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    if OUTPUT_NAME not in present:
        raise ModelLoadError(f"the graph has no output {OUTPUT_NAME!r}")
    return bytes(proto.SerializeToString())
