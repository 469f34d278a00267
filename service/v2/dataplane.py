"""DataPlane: every v2 call, protocol-free; the HTTP routes and the gRPC servicer delegate here."""

from __future__ import annotations

from typing import Any

import numpy as np

from service import __version__
from service.activations import REGISTRY
from service.codecs.v2_infer import InferRequest, InferResponse, OutputTensor
from service.errors import InvalidInput, NotFound, NotReady, excerpt
from service.runtime import Runtime
from service.v2.activation import ActivationModel
from service.v2.classifier import ClassifierModel
from service.v2.classify import classification
from service.v2.model import Model
from service.v2.stats import ModelStats, Phases, clock

SERVER_NAME = "relu-serve"
EXTENSIONS = ["binary_tensor_data", "classification", "model_configuration", "statistics"]


class DataPlane:
    """The model repository (the classifier and every activation function) and its calls."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.activations: dict[str, Model] = {
            name: ActivationModel(name, activation, settings)
            for name, activation in sorted(REGISTRY.items())
        }
        self._classifier: ClassifierModel | None = None
        self._stats: dict[str, ModelStats] = {}

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        try:
            self.runtime.check_ready()
        except NotReady:
            return False
        return True

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS}

    def models(self) -> list[Model]:
        """Every model: the classifier (once loaded) first, then the activations by name."""
        classifier = self._loaded_classifier()
        return [*([classifier] if classifier else []), *self.activations.values()]

    def model(self, name: str, version: str = "") -> Model:
        """The model ``name`` (at ``version`` when given); NotFound lists what there is."""
        found = self.activations.get(name)
        if found is None:
            classifier = self._classifier or self._loaded_classifier()
            if classifier is None:
                self.runtime.loaded_classifier()  # NotReady: its name is not known yet
            if classifier is None or classifier.name != name:
                raise NotFound(
                    f"unknown model {excerpt(name)}; models: "
                    f"{', '.join(m.name for m in self.models())}"
                )
            found = classifier
        if version and version != found.version:
            raise NotFound(
                f"model {found.name} has no version {excerpt(version)}; versions: {found.version}"
            )
        return found

    def model_ready(self, name: str, version: str = "") -> bool:
        return self.model(name, version).ready

    def repository_index(self) -> list[dict[str, str]]:
        return [
            {"name": m.name, "version": m.version, "state": "READY" if m.ready else "UNAVAILABLE"}
            for m in self.models()
        ]

    def statistics(self, name: str = "", version: str = "") -> dict[str, Any]:
        """The statistics of one model, or of all when ``name`` is empty."""
        chosen = [self.model(name, version)] if name else self.models()
        return {"model_stats": [self._stats_of(m).document() for m in chosen]}

    async def infer(self, name: str, version: str, request: InferRequest) -> InferResponse:
        """Run ``request`` on the model; its statistics count the success or the failure."""
        model = self.model(name, version)
        stats = self._stats.get(model.name) or self._stats_of(model)
        phases = [clock()]
        try:
            outputs, batch = await self._infer(model, request, phases)
        except Exception:
            stats.record(phases, 0, ok=False)
            raise
        stats.record(phases, batch, ok=True)
        return InferResponse(model.name, model.version, outputs, request.id)

    async def _infer(
        self, model: Model, request: InferRequest, phases: Phases
    ) -> tuple[list[OutputTensor], int]:
        # Plain loops: on Python 3.11 each comprehension or generator is one more call.
        known = model.output_names()
        wanted: dict[str, None] = {}  # the names asked for, once each, in order
        for asked in request.outputs:
            if asked.name not in known:
                raise InvalidInput(
                    f"unknown output {excerpt(asked.name)} for model {model.name}; its "
                    f"outputs: {', '.join(known)}"
                )
            wanted[asked.name] = None
        arrays, batch = await model.infer(request, list(wanted), phases)
        outputs: dict[str, OutputTensor] = {}
        for name, array in arrays.items():
            outputs[name] = OutputTensor(name, array, request.binary_output)
        for asked in request.outputs:
            output = outputs[asked.name]
            if asked.binary is not None:
                output.binary = asked.binary
            if asked.classification is not None:
                output.array = classification(
                    np.asarray(output.array), asked.classification, model.labels
                )
        phases.append(clock())  # compute_output ends
        return list(outputs.values()), batch

    def _loaded_classifier(self) -> ClassifierModel | None:
        if self._classifier is None and self.runtime.classifier is not None:
            self._classifier = ClassifierModel(self.runtime)
        return self._classifier

    def _stats_of(self, model: Model) -> ModelStats:
        stats = self._stats.get(model.name)
        if stats is None:
            stats = self._stats[model.name] = ModelStats(model.name, model.version)
        return stats
