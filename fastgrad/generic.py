"""Gradient checks of any scalar function ``f(theta)``."""

import json
import numbers

import numba
import numpy as np
from numba.core.registry import CPUDispatcher

from ._hints import FIT, factor_hint, fitted_factor
from ._packing import as_float64, require_finite
from .kernels.generic import centered_differences_of
from .numerical import check_epsilon
from .report import Entry
from .thresholds import Thresholds, entry_errors, error_floor, relative_difference

DEFAULT_FUNCTION_EPSILON = 6e-6
"""Default step for a black-box ``f``: near ``u ** (1/3)``, which balances the
truncation error ``eps^2 |f'''| / 6`` against the rounding error ``u |f| / eps``
for unit-scale ``theta``."""


class FunctionReport:
    """The outcome of :func:`check_function`.

    Attributes
    ----------
    difference : float
        ``||a - n|| / (||a|| + ||n||)``.
    verdict : Verdict
        The worse of the verdicts of ``difference`` and of the largest entry error.
    analytic, numerical, errors : ndarray
        In the shape of ``theta``.
    value : float
        ``f(theta)``.
    epsilon : float
    thresholds : Thresholds
    hint : str or None
        When the verdict fails and ``analytic = c x numerical`` for a constant
        ``c``, the factor and what it suggests.
    """

    def __init__(self, analytic, numerical, value, epsilon, thresholds):
        self.analytic = analytic
        self.numerical = numerical
        self.value = float(value)
        self.epsilon = float(epsilon)
        self.thresholds = thresholds
        self.floor = error_floor(value, epsilon)
        self.errors = entry_errors(analytic, numerical, self.floor)
        self.difference = relative_difference(analytic, numerical)
        max_error = float(self.errors.max()) if self.errors.size else 0.0
        self.verdict = max(thresholds.classify(self.difference), thresholds.classify(max_error))
        self.hint = None
        if self.verdict.failed:
            a, n = analytic.ravel(), numerical.ravel()
            c = fitted_factor(a, n) if np.any(a) else None
            if c is not None and abs(c - 1.0) >= FIT:
                self.hint = factor_hint(c)

    def worst(self, k=10):
        """Return the ``k`` entries with the largest errors, worst first."""
        order = np.argsort(-self.errors.ravel(), kind="stable")[:k]
        return [
            Entry(
                tensor="theta",
                index=tuple(int(i) for i in np.unravel_index(f, self.errors.shape)),
                analytic=float(self.analytic.flat[f]),
                numerical=float(self.numerical.flat[f]),
                error=float(self.errors.flat[f]),
            )
            for f in order
        ]

    def to_dict(self):
        """Return a JSON-ready dict."""
        return {
            "difference": self.difference,
            "verdict": self.verdict.name,
            "value": self.value,
            "epsilon": self.epsilon,
            "size": int(self.analytic.size),
            "max_error": float(self.errors.max()) if self.errors.size else 0.0,
            "worst": [e.to_dict() for e in self.worst(10)],
            "hint": self.hint,
        }

    def to_json(self, **kwargs):
        """Return :meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)

    def __repr__(self):
        return f"<FunctionReport {self.verdict.name} difference={self.difference:.3e}>"

    def __str__(self):
        lines = [
            f"gradient check of f at {self.analytic.size:,} entries, epsilon {self.epsilon:g}",
            f"difference {self.difference:.3e} -> {self.verdict.name}",
        ]
        if self.verdict.failed:
            lines.append("worst entries:")
            lines.extend(f"  {entry}" for entry in self.worst(5))
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


def _scalar(value):
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    if not isinstance(value, (numbers.Real, np.floating, np.integer)) or isinstance(value, bool):
        raise TypeError(f"f must return a real scalar; it returned {type(value).__name__}")
    return float(value)


def function_differences(f, theta, epsilon):
    """Return ``f(theta + eps e_i) - f(theta - eps e_i)`` for every ``i`` (flat).

    A Numba-compiled ``f`` runs inside a parallel kernel; any other callable
    in a plain loop.
    """
    flat = theta.ravel().copy()
    out = np.empty(flat.size)
    if isinstance(f, CPUDispatcher):
        lanes = max(1, min(numba.get_num_threads(), flat.size))
        centered_differences_of(f, flat, theta.shape, epsilon, lanes, out)
        return out
    view = flat.reshape(theta.shape)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + epsilon
        plus = _scalar(f(view))
        flat[i] = keep - epsilon
        minus = _scalar(f(view))
        flat[i] = keep
        out[i] = plus - minus
    return out


def check_function(f, theta, grad, epsilon=DEFAULT_FUNCTION_EPSILON, *, thresholds=None):
    """Check the gradient of any scalar function against centered differences.

    Parameters
    ----------
    f : callable
        ``f(theta) -> float``. A Numba-compiled function (``@numba.njit``)
        is differenced in parallel by a compiled kernel; any other callable
        in a Python loop (``2 theta.size`` calls). ``f`` must not modify its
        argument.
    theta : array_like
        Point at which to check (not modified).
    grad : array_like
        The claimed gradient of ``f`` at ``theta``, same shape.
    epsilon : float, default 6e-6
        Step. A black-box ``f`` is evaluated at ``theta +/- eps e_i`` and the
        two values subtracted, so rounding contributes about ``u |f| / eps``;
        the default balances it against the truncation error for unit-scale
        ``theta``. Pass ``1e-7`` for the course's step.
    thresholds : Thresholds, dict or 3 numbers, optional
        Verdict levels.

    Returns
    -------
    FunctionReport

    Examples
    --------
    >>> import numpy as np
    >>> import fastgrad as fg
    >>> theta = np.array([1.0, -2.0, 0.5])
    >>> report = fg.check_function(lambda t: float(np.sum(t ** 3)), theta, 3 * theta ** 2)
    >>> report.verdict
    <Verdict.CORRECT: 0>
    """
    epsilon = check_epsilon(epsilon)
    thresholds = Thresholds.coerce(thresholds)
    if not callable(f):
        raise TypeError(f"f must be callable; got {type(f).__name__}")
    point = as_float64("theta", theta, copy=True)
    require_finite("theta", point)
    analytic = as_float64("grad", grad, copy=True)
    if analytic.shape != point.shape:
        raise ValueError(f"grad has shape {analytic.shape}; expected theta's shape {point.shape}")
    value = _scalar(f(point.copy()))
    if not np.isfinite(value):
        raise ValueError(f"f(theta) is {value}; the function must be finite at theta")
    numerical = (function_differences(f, point, epsilon) / (2.0 * epsilon)).reshape(point.shape)
    return FunctionReport(analytic, numerical, value, epsilon, thresholds)
