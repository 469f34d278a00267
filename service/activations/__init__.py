"""Activation functions of torch.nn.functional in pure numpy: values, derivatives and VJPs.

Importing the package registers every function; look them up with ``get_activation`` and run
them with ``evaluate``.
"""

from service.activations import exponential, gelu, hard, piecewise, smooth, softmax  # noqa: F401
from service.activations.evaluate import DTYPES, Evaluation, default_outputs, evaluate
from service.activations.params import Param
from service.activations.registry import REGISTRY, Activation, get_activation

__all__ = [
    "DTYPES",
    "REGISTRY",
    "Activation",
    "Evaluation",
    "Param",
    "default_outputs",
    "evaluate",
    "get_activation",
]
