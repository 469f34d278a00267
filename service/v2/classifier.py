"""The served classifier as a v2 model: raw pixels (``input``) or image files (``images``) in,
``logits`` and ``probabilities`` out (and the OOD scores when asked for by name), through the
same batcher, limits and checks as /predict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from service import offload
from service.classifier.predict import DEFAULT_OPTIONS, Predictor, parse_options
from service.classifier.preprocess import prepare
from service.classifier.probabilities import softmax
from service.codecs.v2_infer import InferRequest
from service.codecs.v2_tensors import BYTES, Tensor, decode
from service.errors import InvalidInput, excerpt
from service.metadata import INPUT_NAME, OUTPUT_NAME
from service.runtime import Runtime
from service.v2.model import inputs_by_name, own_parameters, tensor_meta
from service.v2.stats import Phases, clock

IMAGES = "images"
PROBABILITIES = "probabilities"
#: /predict's return_ood as outputs of shape (N, 1), one value per image; sent only when named
#: in the request (they cost a second model run), so "all outputs" means logits and
#: probabilities.
OOD_HAMMING, OOD_ENERGY = "ood_hamming", "ood_energy"
OOD = {OOD_HAMMING: ("hamming", np.int32, "INT32"), OOD_ENERGY: ("energy", np.float32, "FP32")}
#: The model's inputs: raw pixels or image files, one of them per request.
INPUTS = (INPUT_NAME, IMAGES)
#: The options of /predict that apply to a tensor of the model (the others shape its JSON).
OPTIONS = ("normalized", "invert")


class ClassifierModel:
    """The ONNX classifier under its metadata name and version (platform onnxruntime_onnx)."""

    platform = "onnxruntime_onnx"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        classifier = runtime.loaded_classifier()
        self.meta = classifier.metadata
        self.name, self.version = self.meta.name, self.meta.version
        self.num_classes = self.meta.num_classes
        self.labels: Sequence[str] | None = self.meta.labels

    @property
    def ready(self) -> bool:
        return self.runtime.predictor is not None and not self.runtime.stopping

    def output_names(self) -> list[str]:
        return [OUTPUT_NAME, PROBABILITIES, *OOD]

    def metadata(self) -> dict[str, Any]:
        classes = self.meta.num_classes
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.platform,
            "inputs": [
                tensor_meta(INPUT_NAME, "FP32", [-1, *self.meta.input_shape]),
                tensor_meta(IMAGES, BYTES, [-1]),
            ],
            "outputs": [
                tensor_meta(OUTPUT_NAME, "FP32", [-1, classes]),
                tensor_meta(PROBABILITIES, "FP32", [-1, classes]),
                *(tensor_meta(name, datatype, [-1, 1]) for name, (_, _, datatype) in OOD.items()),
            ],
        }

    def config(self) -> dict[str, Any]:
        settings = self.runtime.settings
        classes = self.meta.num_classes
        config: dict[str, Any] = {
            "name": self.name,
            "platform": self.platform,
            "backend": "onnxruntime",
            "max_batch_size": settings.max_images,
            "input": [
                _config_tensor(INPUT_NAME, "TYPE_FP32", list(self.meta.input_shape)),
                {**_config_tensor(IMAGES, "TYPE_STRING", [1]), "reshape": {"shape": []}},
            ],
            "output": [
                _config_tensor(OUTPUT_NAME, "TYPE_FP32", [classes], optional=False),
                _config_tensor(PROBABILITIES, "TYPE_FP32", [classes], optional=False),
                *(
                    _config_tensor(name, f"TYPE_{datatype}", [1], optional=False)
                    for name, (_, _, datatype) in OOD.items()
                ),
            ],
            "parameters": {
                "input_range": {"string_value": "{:g}..{:g}".format(*self.meta.input_range)},
                "labels": {"string_value": ",".join(self.meta.labels)},
            },
        }
        if settings.batching:
            config["dynamic_batching"] = {
                "max_queue_delay_microseconds": round(settings.max_batch_delay_ms * 1000),
                "preferred_batch_size": [settings.max_batch_size],
            }
        return config

    async def infer(
        self, request: InferRequest, names: list[str], phases: Phases
    ) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
        phases.append(clock())  # queue ends: from the request's arrival until its model runs it
        predictor = self.runtime.ready_predictor()
        given = request.inputs
        if len(given) == 1 and given[0].name in INPUTS:  # the usual request: no dict needed
            tensor = given[0]
        else:
            inputs = inputs_by_name(self.name, given, INPUTS)
            if len(inputs) != 1:
                raise InvalidInput(
                    f"send one input: {INPUT_NAME} (pixels) or {IMAGES} (image files)"
                )
            (tensor,) = inputs.values()
        batch = await self._batch(predictor, tensor, request)
        phases.append(clock())  # compute_input ends
        logits = predictor.inference.run_now(batch)
        if logits is None:  # queued for the batcher: its wait counts as compute_infer
            logits = await predictor.inference.logits(batch)
        predictor.observe(batch)  # the ReLU monitor sees v2 traffic as it sees /predict's
        phases.append(clock())  # compute_infer ends
        outputs: dict[str, np.ndarray[Any, Any]] = {}
        asked = not OOD.keys().isdisjoint(names)
        scores = await predictor.ood_scores(batch, logits) if asked else []
        for name in names or (OUTPUT_NAME, PROBABILITIES):
            if name in OOD:
                key, dtype, _ = OOD[name]
                outputs[name] = np.array([[score[key]] for score in scores], dtype=dtype)
            else:
                outputs[name] = (
                    logits if name == OUTPUT_NAME else softmax(logits).astype(np.float32)
                )
        return outputs, len(batch)

    async def _batch(
        self, predictor: Predictor, tensor: Tensor, request: InferRequest
    ) -> np.ndarray[Any, Any]:
        """The model's input from pixels (``prepare``: shapes, range, max_images) or from
        image files (decoded as /predict uploads are)."""
        images = tensor.name == IMAGES
        given = self._options(request) if request.parameters else None
        options = (
            parse_options(given, images=images, num_classes=self.num_classes)
            if given
            else DEFAULT_OPTIONS  # what parse_options answers for no options
        )
        limits = predictor.limits
        if not images:
            raw = decode(tensor, limits.max_elements)
            if raw.nbytes <= offload.INLINE_BODY_BYTES:  # offload.by_size without its coroutine
                return prepare(
                    raw, self.meta, max_images=limits.max_images, normalized=options.normalized
                )
            return await offload.in_thread(
                predictor.deadline_s,
                prepare,
                raw,
                self.meta,
                max_images=limits.max_images,
                normalized=options.normalized,
            )
        if tensor.datatype != BYTES:
            raise InvalidInput(f"input {IMAGES} holds image files: its datatype must be BYTES")
        files = decode(tensor, limits.max_images).reshape(-1)
        named = [(f"{IMAGES}[{i}]", bytes(data)) for i, data in enumerate(files)]
        invert = None if options.invert == "auto" else bool(options.invert)
        return await predictor.images(named, invert)

    def _options(self, request: InferRequest) -> dict[str, Any]:
        given = own_parameters(request)
        for key in given:
            if key not in OPTIONS:
                raise InvalidInput(
                    f"unknown parameter {excerpt(key)} for model {self.name}; valid parameters: "
                    f"{', '.join(OPTIONS)}"
                )
        return given


def _config_tensor(
    name: str, datatype: str, dims: list[int], *, optional: bool = True
) -> dict[str, Any]:
    tensor: dict[str, Any] = {"name": name, "data_type": datatype, "dims": dims}
    return {**tensor, "optional": True} if optional else tensor
