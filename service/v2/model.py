"""What every v2 model offers the data plane: metadata, config, and infer on decoded tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from service.codecs.v2_infer import InferRequest
from service.codecs.v2_tensors import Tensor
from service.errors import InvalidInput, excerpt
from service.v2.stats import Phases

#: Request parameters of the protocol itself (binary extension, Triton's scheduling), never a
#: model's own.
RESERVED = frozenset(
    {"binary_data_output", "sequence_id", "sequence_start", "sequence_end", "priority", "timeout"}
)


class Model(Protocol):
    name: str
    version: str
    platform: str
    #: Class labels for the classification extension (None: indices only).
    labels: Sequence[str] | None

    @property
    def ready(self) -> bool: ...

    def metadata(self) -> dict[str, Any]: ...

    def config(self) -> dict[str, Any]: ...

    def output_names(self) -> list[str]: ...

    async def infer(
        self, request: InferRequest, names: list[str], phases: Phases
    ) -> tuple[dict[str, np.ndarray[Any, Any]], int]:
        """The outputs ``names`` (all when empty) by name, and the batch size served."""
        ...


def tensor_meta(name: str, datatype: str, shape: Sequence[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": list(shape)}


def inputs_by_name(model: str, inputs: list[Tensor], allowed: Sequence[str]) -> dict[str, Tensor]:
    """The request's inputs keyed by name; unknown or repeated names are InvalidInput."""
    found: dict[str, Tensor] = {}
    for tensor in inputs:
        if tensor.name not in allowed:
            raise InvalidInput(
                f"unknown input {excerpt(tensor.name)} for model {model}; its inputs: "
                f"{', '.join(allowed)}"
            )
        if tensor.name in found:
            raise InvalidInput(f"input {excerpt(tensor.name)} is given twice")
        found[tensor.name] = tensor
    return found


def own_parameters(request: InferRequest) -> dict[str, Any]:
    """The request's parameters meant for the model (the protocol's own taken out)."""
    return {
        key: value
        for key, value in request.parameters.items()
        if key not in RESERVED and not key.startswith("triton_")
    }
