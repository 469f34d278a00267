"""Activation parameters: torch's names, types and defaults, checked with messages that teach."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from service.errors import InvalidInput
from service.tensors import array_from_json

Params = Mapping[str, Any]
ParamKind = Literal["float", "int", "bool", "choice", "weight", "seed"]

_TYPE_NAMES: dict[ParamKind, str] = {
    "float": "number",
    "int": "integer",
    "bool": "boolean",
    "choice": "string",
    "weight": "number or 1-D list of numbers",
    "seed": "integer or null",
}

#: Most elements a prelu weight may have.
MAX_WEIGHT_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class Param:
    """One parameter: its torch name, type, default and the rule its value must follow."""

    name: str
    kind: ParamKind
    doc: str
    default: Any = None
    required: bool = False
    rule: Callable[[Any], bool] | None = None
    rule_text: str = ""
    """The rule in words, completing "<name> must ...", e.g. "be > 0"."""
    choices: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        constraint = f"must {self.rule_text}" if self.rule_text else None
        if self.choices:
            constraint = "one of " + ", ".join(repr(c) for c in self.choices)
        return {
            "name": self.name,
            "type": _TYPE_NAMES[self.kind],
            "default": None if self.required else self.default,
            "required": self.required,
            "constraint": constraint,
            "doc": self.doc,
        }

    def missing(self, function: str) -> Any:
        if self.required:
            raise InvalidInput(f"{function}: parameter {self.name} is required ({self.doc})")
        return self.default

    def coerce(self, function: str, value: Any) -> Any:
        """The value in its canonical type, or InvalidInput naming parameter, value and rule."""
        out = self._typed(function, value)
        if self.rule is not None and not self.rule(out):
            raise InvalidInput(
                f"{function}: {self.name}={value!r} is invalid; {self.name} must {self.rule_text}"
            )
        return out

    def _typed(self, function: str, value: Any) -> Any:
        def wrong(expected: str) -> InvalidInput:
            return InvalidInput(
                f"{function}: {self.name}={value!r} is invalid; {self.name} must be {expected}"
            )

        if self.kind == "float":
            if type(value) not in (int, float) or not math.isfinite(value):
                raise wrong("a finite number")
            return float(value)
        if self.kind == "int" or (self.kind == "seed" and value is not None):
            if type(value) is not int:
                raise wrong("an integer" if self.kind == "int" else "an integer >= 0 or null")
            if self.kind == "seed" and not 0 <= value < 2**63:
                raise wrong("an integer in 0..2**63-1 or null")
            return value
        if self.kind == "bool":
            if type(value) is not bool:
                raise wrong("true or false")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise wrong("one of " + ", ".join(repr(c) for c in self.choices))
            return value
        if self.kind == "weight":
            weight = array_from_json(
                value, dtype=np.float64, max_elements=MAX_WEIGHT_ELEMENTS, name=self.name
            )
            if weight.ndim > 1:
                raise wrong(f"a number or a 1-D list of numbers, not rank {weight.ndim}")
            return weight
        return value  # seed: None
