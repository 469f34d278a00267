"""Special functions in float64 without SciPy: erfcx (exact GELU's left tail, to about 1 ULP),
erf and the logistic sigmoid (the geometry's smooth ops). It imports no other service package,
so the activations and the classifier's geometry can both use it."""

from service.special.erfcx import erfcx
from service.special.functions import erf, expit

__all__ = ["erf", "erfcx", "expit"]
