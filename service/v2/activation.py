"""Each activation function as a v2 model named after it: ``x`` (and ``grad_output``) in, the
outputs of /activate out, its parameters as request parameters validated as /activate does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from service import offload
from service.activations.evaluate import Evaluation, default_outputs, evaluate
from service.activations.registry import Activation
from service.codecs.v2_infer import InferRequest
from service.codecs.v2_tensors import Tensor, decode
from service.config import Settings
from service.errors import InvalidInput, excerpt
from service.v2.model import inputs_by_name, own_parameters, tensor_meta
from service.v2.stats import Phases, clock

X, GRAD_OUTPUT = "x", "grad_output"
#: The precisions the activations compute in (the input's own).
FLOATS = ("FP32", "FP64")
PLATFORM = "relu_serve_activation"


class ActivationModel:
    """One activation function (an alias is a model of its own name); version 1."""

    platform = PLATFORM
    version = "1"
    labels: Sequence[str] | None = None
    ready = True

    def __init__(self, name: str, activation: Activation, settings: Settings) -> None:
        self.name, self.activation = name, activation
        self.max_elements = settings.max_elements
        self.deadline_s = settings.request_timeout_ms / 1000

    def output_names(self) -> list[str]:
        return list(self.activation.outputs)

    def metadata(self) -> dict[str, Any]:
        """Inputs and outputs of any shape (FP32 or FP64: the input's precision is used), and
        the function's parameters as GET /activations/{name} describes them."""
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.platform,
            "inputs": [tensor_meta(X, "FP32", [-1]), tensor_meta(GRAD_OUTPUT, "FP32", [-1])],
            "outputs": [tensor_meta(name, "FP32", [-1]) for name in self.output_names()],
            "parameters": [param.describe() for param in self.activation.params],
        }

    def config(self) -> dict[str, Any]:
        def tensor(name: str, **extra: Any) -> dict[str, Any]:
            return {"name": name, "data_type": "TYPE_FP32", "dims": [-1], **extra}

        return {
            "name": self.name,
            "platform": self.platform,
            "backend": "relu_serve",
            "max_batch_size": 0,
            "input": [tensor(X), tensor(GRAD_OUTPUT, optional=True)],
            "output": [tensor(name) for name in self.output_names()],
        }

    async def infer(
        self, request: InferRequest, names: list[str], phases: Phases
    ) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
        phases.append(clock())  # queue ends: from the request's arrival until its model runs it
        activation = self.activation
        validated = activation.validate(_parameters(request))
        inputs = inputs_by_name(self.name, request.inputs, (X, GRAD_OUTPUT))
        if X not in inputs:
            raise InvalidInput(f"model {self.name} needs the input {X}")
        x = self._array(inputs[X])
        g = self._array(inputs[GRAD_OUTPUT]) if GRAD_OUTPUT in inputs else None
        chosen = names or default_outputs(activation, grad_output=g is not None)
        phases.append(clock())  # compute_input ends
        result: Evaluation = await offload.by_size(
            x.nbytes, self.deadline_s, evaluate, activation, x, validated, chosen, g
        )
        phases.append(clock())  # compute_infer ends
        return dict(result.arrays), 1

    def _array(self, tensor: Tensor) -> np.ndarray[Any, Any]:
        if tensor.datatype not in FLOATS:
            raise InvalidInput(
                f"input {tensor.name} of {self.name} has datatype {excerpt(tensor.datatype)}; "
                f"send {' or '.join(FLOATS)} (the computation runs in its precision)"
            )
        return decode(tensor, self.max_elements)


def _parameters(request: InferRequest) -> dict[str, Any]:
    """The function's parameters; a text value holding a JSON list (prelu's weight) is read as
    that list, since v2 parameters are scalars."""
    params = own_parameters(request)
    for key, value in params.items():
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                params[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise InvalidInput(
                    f"parameter {excerpt(key)}: {excerpt(value)} is not a JSON list"
                ) from None
    return params
