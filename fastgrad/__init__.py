"""fastgrad: fast, exact gradient checking for dense neural networks.

>>> import fastgrad as fg
>>> net = fg.MLP([784, 128, 64, 10], hidden="relu", output="softmax")   # doctest: +SKIP
>>> report = fg.check(net, params, X, Y, grads=my_grads)                 # doctest: +SKIP
>>> print(report)                                                        # doctest: +SKIP
"""

from . import init, testing
from ._packing import PrecisionWarning
from ._step import StepWarning
from .check import check
from .diagnostics import DiagnosisResult, diagnose
from .generic import FunctionReport, check_function
from .interop import from_torch, torch_gradients
from .mlp import MLP
from .numerical import numerical_gradient
from .report import CheckReport, Direction, Entry, TensorReport
from .taylor import TaylorResult, taylor_test
from .thresholds import Thresholds, Verdict, classify, relative_difference

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "CheckReport",
    "DiagnosisResult",
    "Direction",
    "Entry",
    "FunctionReport",
    "PrecisionWarning",
    "StepWarning",
    "TaylorResult",
    "TensorReport",
    "Thresholds",
    "Verdict",
    "check",
    "check_function",
    "classify",
    "diagnose",
    "from_torch",
    "init",
    "numerical_gradient",
    "relative_difference",
    "taylor_test",
    "testing",
    "torch_gradients",
    "__version__",
]
