"""Classifier: the ONNX Runtime session of one model (providers, threads, metadata, signature, run)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from service.config import Settings
from service.errors import InvalidInput, ModelLoadError
from service.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from service.session import open_session

_FLOAT32 = np.dtype(np.float32)

#: Our short provider names -> ONNX Runtime's.
PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
_SHORT = {full: short for short, full in PROVIDERS.items()}

#: The C++ source location ORT puts before some messages ("/src/model.cc:256 Model::Model(...) ").
_ORT_SOURCE = re.compile(r"^/\S+:\d+ .*?\)\s+")


@dataclass(frozen=True)
class SessionInfo:
    """How the session really runs: what was asked for and what ONNX Runtime made of it."""

    providers_requested: tuple[str, ...]
    providers_active: tuple[str, ...]
    intra_op_threads: int
    inter_op_threads: int
    graph_optimization_level: str


def warmup_sizes(max_batch: int) -> tuple[int, ...]:
    """Batch sizes to run before readiness: 1, powers of 8 and the largest batch served."""
    sizes = {1, max_batch}
    size = 8
    while size < max_batch:
        sizes.add(size)
        size *= 8
    return tuple(sorted(sizes))


class Classifier:
    """One loaded model: metadata read once, inputs checked before ONNX Runtime sees them.

    ``predict`` is safe to call from several threads at once (ORT sessions are thread-safe).
    """

    def __init__(
        self,
        path: Path,
        *,
        providers: Sequence[str] = ("cpu",),
        strict_providers: bool = False,
        intra_op_threads: int = 1,
        graph_optimization_level: str = "all",
    ) -> None:
        data = _read(path)
        self.path = path
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.file_bytes = len(data)
        self._session = _session(data, path, providers, intra_op_threads, graph_optimization_level)
        active = tuple(_SHORT.get(p, p) for p in self._session.get_providers())
        if strict_providers and active[0] != providers[0]:
            raise ModelLoadError(
                f"{path}: provider {providers[0]!r} was requested first but ONNX Runtime runs on "
                f"{active[0]!r} (strict_providers is on; available in this build: "
                f"{', '.join(ort.get_available_providers())})"
            )
        self.session_info = SessionInfo(
            providers_requested=tuple(providers),
            providers_active=active,
            intra_op_threads=intra_op_threads,
            inter_op_threads=1,
            graph_optimization_level=graph_optimization_level,
        )
        props = self._session.get_modelmeta().custom_metadata_map
        try:
            self.metadata = ModelMetadata.from_props(props)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{path}: {exc.message}") from None
        self._check_signature()

    @classmethod
    def from_settings(cls, settings: Settings) -> Classifier:
        """Load the model the settings name; raise ModelLoadError naming the path and problem."""
        return cls(
            settings.model_path,
            providers=settings.providers,
            strict_providers=settings.strict_providers,
            intra_op_threads=settings.threads_per_worker,
            graph_optimization_level=settings.graph_optimization_level,
        )

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of one input image."""
        _, height, width = self.metadata.input_shape
        return height, width

    def warm_up(self, batch_sizes: Sequence[int]) -> None:
        """Run each batch size once so that the first requests do not pay for allocation."""
        channels, height, width = self.metadata.input_shape
        for size in batch_sizes:
            self.predict(np.zeros((size, channels, height, width), dtype=np.float32))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Logits (N, classes) for a normalised float32 batch (N, C, H, W)."""
        if batch.dtype != _FLOAT32:
            raise InvalidInput(f"the model takes float32 input, got {batch.dtype}")
        if batch.ndim != 4 or batch.shape[1:] != self.metadata.input_shape or not len(batch):
            raise InvalidInput(
                f"the model takes shape (N>=1, {', '.join(map(str, self.metadata.input_shape))}), "
                f"got {batch.shape}"
            )
        logits: np.ndarray = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        return logits

    def _check_signature(self) -> None:
        inputs = self._session.get_inputs()
        outputs = {o.name: o for o in self._session.get_outputs()}
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or OUTPUT_NAME not in outputs:
            raise ModelLoadError(
                f"{self.path}: expected one input {INPUT_NAME!r} and an output {OUTPUT_NAME!r}, "
                f"found inputs {[i.name for i in inputs]} and outputs {list(outputs)}"
            )
        shape = list(inputs[0].shape[1:])
        if shape != list(self.metadata.input_shape):
            raise ModelLoadError(
                f"{self.path}: input shape {shape} does not match the metadata's "
                f"{list(self.metadata.input_shape)}"
            )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(
            f"{path}: no such file (build it with `make model` or set RELU_SERVE_MODEL_PATH)"
        ) from None
    except IsADirectoryError:
        raise ModelLoadError(f"{path}: is a directory, not an ONNX file") from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror})") from None


def _session(data: bytes, path: Path, providers: Sequence[str], threads: int, level: str) -> Any:
    available = ort.get_available_providers()
    chosen = [PROVIDERS[p] for p in providers if PROVIDERS.get(p) in available]
    if not chosen:
        raise ModelLoadError(
            f"{path}: none of the providers {', '.join(providers)} is available in this "
            f"ONNX Runtime build (it has {', '.join(available)})"
        )
    try:
        return open_session(data, providers=chosen, intra_op_threads=threads, optimization=level)
    except Exception as exc:  # ORT's pybind errors (InvalidProtobuf, Fail, ...) share no base
        reason = str(exc).split(" : ")[-1].strip() or type(exc).__name__
        reason = _ORT_SOURCE.sub("", reason)
        raise ModelLoadError(f"{path}: not a loadable ONNX model ({reason})") from None
