"""GET /model: the served model's metadata, file hash and runtime settings."""

from __future__ import annotations

import onnxruntime as ort
from fastapi import APIRouter

from service.api.deps import LoadedClassifierDep
from service.api.schemas.health import ErrorDetail
from service.api.schemas.model import ModelInfo, Normalization, RuntimeInfo

router = APIRouter(tags=["model"])


@router.get(
    "/model",
    response_model=ModelInfo,
    responses={503: {"model": ErrorDetail, "description": "the model is not loaded yet"}},
)
async def model_info(classifier: LoadedClassifierDep) -> ModelInfo:
    """The model's name, version, labels, input contract (shape, raw value range,
    normalisation), test accuracy, opset, file SHA-256, and the execution providers requested
    and actually active with the thread settings."""
    meta, runtime = classifier.metadata, classifier.runtime
    return ModelInfo(
        name=meta.name,
        version=meta.version,
        labels=list(meta.labels),
        input_shape=list(meta.input_shape),
        input_range=list(meta.input_range),
        normalization=Normalization(mean=meta.mean, std=meta.std),
        dataset=meta.dataset,
        split_sizes=meta.split_sizes,
        test_accuracy=meta.test_accuracy,
        activation=meta.activation,
        opset=meta.opset,
        torch_version=meta.torch_version,
        created=meta.created,
        sha256=classifier.sha256,
        file_bytes=classifier.file_bytes,
        runtime=RuntimeInfo(
            onnxruntime_version=ort.__version__,
            providers_requested=list(runtime.providers_requested),
            providers_active=list(runtime.providers_active),
            intra_op_threads=runtime.intra_op_threads,
            inter_op_threads=runtime.inter_op_threads,
            graph_optimization_level=runtime.graph_optimization_level,
        ),
    )
