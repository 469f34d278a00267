"""Activation parameters: torch's names, types and defaults, checked with messages that teach."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from service.codecs.json_arrays import array_from_json
from service.errors import InvalidInput, excerpt

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
                f"{function}: {self.name}={excerpt(value)} is invalid; {self.name} must {self.rule_text}"
            )
        return out

    def _typed(self, function: str, value: Any) -> Any:
        if self.kind == "seed" and value is None:
            return None
        try:
            return _CONVERT[self.kind](self, value)
        except _Wrong as exc:
            raise InvalidInput(
                f"{function}: {self.name}={excerpt(value)} is invalid; {self.name} must be {exc.expected}"
            ) from None


class _Wrong(Exception):
    def __init__(self, expected: str) -> None:
        self.expected = expected


def _float(param: Param, value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _Wrong("a finite number")
    return float(value)


def _int(param: Param, value: Any) -> int:
    if type(value) is not int:
        raise _Wrong("an integer")
    return value


def _seed(param: Param, value: Any) -> int:
    if type(value) is not int:
        raise _Wrong("an integer >= 0 or null")
    if not 0 <= value < 2**63:
        raise _Wrong("an integer in 0..2**63-1 or null")
    return value


def _bool(param: Param, value: Any) -> bool:
    if type(value) is not bool:
        raise _Wrong("true or false")
    return value


def _choice(param: Param, value: Any) -> Any:
    if value not in param.choices:
        raise _Wrong("one of " + ", ".join(repr(c) for c in param.choices))
    return value


def _weight(param: Param, value: Any) -> Any:
    weight = array_from_json(
        value, dtype=np.float64, max_elements=MAX_WEIGHT_ELEMENTS, name=param.name
    )
    if weight.ndim > 1:
        raise _Wrong(f"a number or a 1-D list of numbers, not rank {weight.ndim}")
    return weight


#: How each parameter kind checks and converts its value.
_CONVERT: dict[str, Callable[[Param, Any], Any]] = {
    "float": _float,
    "int": _int,
    "seed": _seed,
    "bool": _bool,
    "choice": _choice,
    "weight": _weight,
}
