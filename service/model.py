"""Classifier: the ONNX Runtime session wrapper (providers, threads, metadata, input checks, run)."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from service.config import Settings
from service.errors import InvalidInput, ModelLoadError, TooLarge
from service.metadata import ModelMetadata

INPUT_NAME = "input"
OUTPUT_NAME = "logits"

#: Our short provider names -> ONNX Runtime's.
PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
_SHORT = {full: short for short, full in PROVIDERS.items()}

#: The C++ source location ORT puts before some messages ("/src/model.cc:256 Model::Model(...) ").
_ORT_SOURCE = re.compile(r"^/\S+:\d+ .*?\)\s+")

_OPT_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class Runtime:
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
        self.runtime = Runtime(
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
        self._ready = threading.Event()

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

    @property
    def ready(self) -> bool:
        """True once warm_up has run."""
        return self._ready.is_set()

    def warm_up(self, batch_sizes: Sequence[int]) -> None:
        """Run each batch size once so that the first requests do not pay for allocation."""
        channels, height, width = self.metadata.input_shape
        for size in batch_sizes:
            self.predict(np.zeros((size, channels, height, width), dtype=np.float32))
        self._ready.set()

    def prepare(self, raw: np.ndarray, *, normalized: bool = False, max_images: int) -> np.ndarray:
        """Check a client array of images and return the model's (N, C, H, W) float32 input.

        Accepts one image (H, W), a batch (N, H, W) or (N, C, H, W), in the raw value range
        of the metadata unless ``normalized``.
        """
        channels, height, width = self.metadata.input_shape
        expected = f"(H, W), (N, H, W) or (N, {channels}, H, W) with H={height}, W={width}"
        if raw.dtype.kind not in "fiu":
            raise InvalidInput(f"inputs must be numbers, got dtype {raw.dtype}")
        if raw.size == 0:
            raise InvalidInput(
                f"inputs hold no images (shape {list(raw.shape)}); send at least one"
            )
        if raw.ndim == 2:
            raw = raw[None, None]
        elif raw.ndim == 3 and channels == 1:
            raw = raw[:, None]
        elif raw.ndim != 4:
            raise InvalidInput(
                f"inputs have rank {raw.ndim} (shape {list(raw.shape)}); expected {expected}"
            )
        if raw.shape[1:] != (channels, height, width):
            raise InvalidInput(
                f"inputs have image shape {list(raw.shape[1:])}; expected {expected}"
            )
        if raw.shape[0] > max_images:
            raise TooLarge(
                f"{raw.shape[0]} images in one request exceeds the limit of {max_images}"
            )
        batch = raw.astype(np.float32, copy=False)
        if not np.isfinite(batch).all():
            raise InvalidInput("inputs contain NaN or Infinity; every value must be finite")
        if normalized:
            return np.ascontiguousarray(batch)
        return self.normalize(batch)

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """Raw values -> model input, in float32 and in the same order of operations as training
        (scale to [0, 1], then subtract mean and divide by std) so that results match exactly."""
        low, high = self.metadata.input_range
        x = np.subtract(raw, low, dtype=np.float32)
        x /= high - low
        x -= self.metadata.mean
        x /= self.metadata.std
        normalized: np.ndarray = x
        return normalized

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Logits (N, classes) for a normalised float32 batch (N, C, H, W)."""
        if batch.dtype != np.float32:
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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for any finite logits (the row maximum is subtracted first)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probabilities


def top_k(probabilities: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k) of the k most probable classes per row, most probable first; ties keep
    the lower index first, as argmax does."""
    order: np.ndarray = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return order


def check_top_k(k: int, num_classes: int) -> None:
    """Raise InvalidInput unless 1 <= k <= num_classes."""
    if not 1 <= k <= num_classes:
        raise InvalidInput(f"top_k must be between 1 and {num_classes} (the labels), got {k}")


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
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = _OPT_LEVELS[level]
    # Spinning worker threads burn whole cores between requests (measured); block instead.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, sess_options=options, providers=chosen)
    except Exception as exc:  # ORT's pybind errors (InvalidProtobuf, Fail, ...) share no base
        reason = str(exc).split(" : ")[-1].strip() or type(exc).__name__
        reason = _ORT_SOURCE.sub("", reason)
        raise ModelLoadError(f"{path}: not a loadable ONNX model ({reason})") from None
