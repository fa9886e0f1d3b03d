"""fastgrad: fast, exact gradient checking for dense neural networks."""

from ._packing import PrecisionWarning
from .mlp import MLP

__version__ = "0.1.0"

__all__ = ["MLP", "PrecisionWarning", "__version__"]
