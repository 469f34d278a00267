"""ONNX Runtime sessions made one way for the service, the exporter's parity check and the bench."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnxruntime as ort

#: ONNX Runtime's name for each graph optimisation level we accept.
OPT_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(intra_op_threads: int = 1, optimization: str = "all") -> Any:
    """Threads set deliberately: ``intra_op_threads`` inside an op, one across ops, no spinning.

    Spinning worker threads burn whole cores between requests (measured), so they block instead.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = OPT_LEVELS[optimization]
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def open_session(
    model: bytes | str,
    *,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    intra_op_threads: int = 1,
    optimization: str = "all",
) -> Any:
    """An InferenceSession on ``model`` (bytes or a path) with ``session_options``."""
    options = session_options(intra_op_threads, optimization)
    return ort.InferenceSession(model, sess_options=options, providers=list(providers))
