"""GET /model: the served model's metadata, file hash and runtime settings."""

from __future__ import annotations

import onnxruntime as ort
from fastapi import APIRouter

from service.api import errors
from service.api.deps import RuntimeDep
from service.api.schemas.model import BatchingInfo, ModelInfo, Normalization, RuntimeInfo
from service.classifier.inference import Inference
from service.config import Settings
from service.errors import NotReady

router = APIRouter(tags=["model"])


@router.get("/model", response_model=ModelInfo, responses=errors.responses(NotReady))
async def model_info(runtime: RuntimeDep) -> ModelInfo:
    """The model's name, version, labels, input contract (shape, raw value range,
    normalisation), test accuracy, opset, file SHA-256, and the execution providers requested
    and actually active with the thread settings, and what dynamic batching has done."""
    classifier = runtime.loaded_classifier()
    meta, session = classifier.metadata, classifier.session_info
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
            providers_requested=list(session.providers_requested),
            providers_active=list(session.providers_active),
            intra_op_threads=session.intra_op_threads,
            inter_op_threads=session.inter_op_threads,
            graph_optimization_level=session.graph_optimization_level,
        ),
        batching=_batching(runtime.settings, runtime.inference),
    )


def _batching(settings: Settings, inference: Inference | None) -> BatchingInfo | None:
    if inference is None:
        return None
    batcher = inference.batcher
    stats = batcher.stats if batcher is not None else None
    return BatchingInfo(
        enabled=batcher is not None,
        max_batch_size=settings.max_batch_size,
        max_batch_delay_ms=settings.max_batch_delay_ms,
        max_queue_images=settings.max_queue_images,
        queued_images=batcher.queued if batcher is not None else 0,
        batches=stats.batches if stats else 0,
        requests=stats.requests if stats else 0,
        images=stats.images if stats else 0,
        mean_batch_images=stats.images / stats.batches if stats and stats.batches else 0.0,
        max_batch_images=stats.max_batch_images if stats else 0,
        last_batch_images=stats.last_batch_images if stats else 0,
        last_queue_delay_ms=stats.last_queue_delay_ms if stats else 0.0,
    )
