"""Gradient checks of any scalar function ``f(theta)``."""

import json
import numbers
import warnings

import numba
import numpy as np
from numba.core.registry import CPUDispatcher

from ._hints import FIT, factor_hint, fitted_factor
from ._magnitude import comparison_floor
from ._packing import PrecisionWarning, as_float64, require_finite
from .kernels.user_function import centered_differences_of
from .numerical import check_epsilon
from .report import Entry
from .thresholds import ROUNDING, Thresholds, Verdict, squared_norms

DEFAULT_FUNCTION_EPSILON = 6e-6
"""Default step for a black-box ``f``: near ``u ** (1/3)``, which balances the
truncation error ``eps^2 |f'''| / 6`` against the rounding error ``u |f| / eps``
for unit-scale ``theta``."""


NOISE_SAFETY = 4.0
"""How many times its own error estimate a numerical entry may be off.

The estimate ``|D(2 eps) - D(eps)| / 3`` is Richardson's for the truncation
error; the noise of ``f``'s values enters it at random, so it is taken with
a margin."""

REDUCED_PRECISION = 1e-10
"""Relative noise of ``f``'s values above which ``f`` is taken to compute in less
than float64 (float32 shows about 1e-7, float64 about 1e-16)."""


class FunctionReport:
    """The outcome of :func:`check_function`.

    Attributes
    ----------
    difference : float
        ``||a - n|| / (||a|| + ||n||)`` over the compared entries, the
        denominator floored like a network check's.
    verdict : Verdict
        The worse of the verdicts of ``difference`` and of the largest entry
        error; INCONCLUSIVE when nothing failed but some entry is within the
        noise of ``f`` (see ``reasons``).
    analytic, numerical : ndarray
        In the shape of ``theta``; ``numerical`` is the centered difference
        at ``epsilon``.
    estimates : ndarray
        Each numerical entry's error estimate: Richardson's
        ``|D(2 eps) - D(eps)| / 3``, plus three times its median over the
        entries (the noise of one difference, which one entry's spread can
        miss by chance), plus ``(u + noise) |f| / eps``.
    errors : ndarray
        ``|a - n| / max(|a| + |n|, floor)`` where the gap is beyond the
        entry's noise tolerance ``t = 4 estimate``; within it, the denominator
        is at least ``t / acceptable`` (so noise reads at most ACCEPTABLE),
        and the entry is NaN (not established) when ``t`` is not small
        beside the whole gradient (``acceptable max(|a| + |n|)``).
    step : float or None
        The step that suits ``f``'s noise, when it is beyond float64's.
    noise : float
        Relative noise of ``f``'s values: float32's when ``f`` returns
        float32 or shows noise beyond float64 rounding, else what the two
        steps show.
    reasons : list of str
        Why the verdict is INCONCLUSIVE.
    hint : str or None
        The likely mistake, when the verdict is SUSPICIOUS or WRONG.
    value : float
        ``f(theta)``.
    epsilon : float
    thresholds : Thresholds
    """

    def __init__(
        self, analytic, numerical, estimates, value, epsilon, thresholds, noise=0.0, step=None
    ):
        self.analytic = analytic
        self.numerical = numerical
        self.estimates = estimates
        self.value = float(value)
        self.epsilon = float(epsilon)
        self.thresholds = thresholds
        self.noise = float(noise)
        self.step = step
        a, n, e = analytic.ravel(), numerical.ravel(), estimates.ravel()
        gap, size = np.abs(a - n), np.abs(a) + np.abs(n)
        tolerance = NOISE_SAFETY * e
        beyond = gap > tolerance
        # within its noise, an entry is established when the noise is small beside the
        # whole gradient (as a network check's floor), and then reads at most ACCEPTABLE
        finite = np.isfinite(n) & np.isfinite(e)
        with np.errstate(invalid="ignore"):
            largest = np.max(size[finite], initial=0.0)
            resolved = tolerance <= thresholds.acceptable * largest
            used = (beyond | resolved) & finite
        self.floor = comparison_floor(np.max(np.abs(n), initial=0.0))
        errors = np.full(a.size, np.nan)
        scale = np.maximum(size, self.floor)
        scale = np.where(beyond, scale, np.maximum(scale, tolerance / thresholds.acceptable))
        with np.errstate(invalid="ignore", divide="ignore"):
            errors[used] = np.where(scale > 0, gap / scale, 0.0)[used]
        self.errors = errors.reshape(analytic.shape)
        gap2, a2, n2 = squared_norms(a[used], n[used])
        denominator = max(np.sqrt(a2) + np.sqrt(n2), self.floor * np.sqrt(used.sum()))
        self.difference = float(np.sqrt(gap2) / denominator) if denominator > 0 else 0.0
        max_error = float(errors[used].max()) if used.any() else 0.0
        verdict = max(thresholds.classify(self.difference), thresholds.classify(max_error))
        self.reasons = self._reasons(int(np.count_nonzero(finite & ~used)), a.size)
        if not finite.all():
            self.reasons.append(
                f"{int(np.count_nonzero(~finite)):,} of {a.size:,} entries have a centered "
                "difference that is not finite (f overflows at theta +/- epsilon e_i); they are "
                "not compared"
            )
        if self.reasons and not verdict.failed:
            verdict = Verdict.INCONCLUSIVE
        self.verdict = verdict
        self.hint = self._hint(a, n, used) if verdict.failed else None

    def _reasons(self, unresolved, size):
        if not unresolved:
            return []
        if self.noise > REDUCED_PRECISION:
            noisy = (
                f"{unresolved:,} of {size:,} entries are within the noise of f, whose values "
                f"are noisy at about {self.noise:.1e} relative (reduced precision?)"
            )
            if self.epsilon < 0.5 * self.step:
                return [f"{noisy}: use epsilon ~ {self.step:.1g}"]
            # already at the step that suits the noise: no step resolves these entries
            return [
                f"{noisy}, even at this step: compute f in float64, or use "
                "fg.taylor_test(f, theta, grad), which reads orders, not a tolerance"
            ]
        if unresolved == size:
            return [
                "the gradient vanishes at this point to within the noise of f's values; "
                "check at another (e.g. at initialization)"
            ]
        return [
            f"{unresolved:,} of {size:,} entries are within the noise of f's values at this "
            "step: not established"
        ]

    def _hint(self, a, n, used):
        """Name the likely mistake, as a network check does: few entries, a factor, a sign."""
        errors = np.where(used, self.errors.ravel(), 0.0)
        bad = np.flatnonzero(used & (errors >= self.thresholds.acceptable))
        if 0 < bad.size <= 3 and 4 * bad.size <= used.sum() - bad.size:
            where = ", ".join(self._label(int(i)) for i in bad)
            noun = "entry is" if bad.size == 1 else "entries are"
            return f"only {bad.size} {noun} wrong, the rest agree: {where}"
        c = fitted_factor(a[used], n[used]) if np.any(a[used]) else None
        return factor_hint(c) if c is not None and abs(c - 1.0) >= FIT else None

    def _label(self, flat):
        if self.analytic.ndim == 0:
            return "theta"
        index = np.unravel_index(flat, self.analytic.shape)
        return f"theta[{', '.join(str(int(i)) for i in index)}]"

    def worst(self, k=10):
        """Return the ``k`` compared entries with the largest errors, worst first."""
        flat = self.errors.ravel()
        index = np.flatnonzero(~np.isnan(flat))
        order = index[np.argsort(-flat[index], kind="stable")[:k]]
        return [
            Entry(
                tensor="theta",
                index=tuple(int(i) for i in np.unravel_index(f, self.errors.shape)),
                analytic=float(self.analytic.flat[f]),
                numerical=float(self.numerical.flat[f]),
                error=float(flat[f]),
            )
            for f in order
        ]

    def to_dict(self):
        """Return a JSON-ready dict."""
        errors = self.errors[~np.isnan(self.errors)]
        return {
            "difference": self.difference,
            "verdict": self.verdict.name,
            "value": self.value,
            "epsilon": self.epsilon,
            "size": int(self.analytic.size),
            "max_error": float(errors.max()) if errors.size else 0.0,
            "noise": self.noise,
            "reasons": list(self.reasons),
            "hint": self.hint,
            "worst": [e.to_dict() for e in self.worst(10)],
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
        lines.extend(f"not established: {reason}" for reason in self.reasons)
        return "\n".join(lines)


def suggested_step(noise, theta):
    """Return the step that balances truncation against a relative ``noise`` of f's values.

    ``noise ** (1/3)`` times the scale of ``theta`` (at least 1): the rounding
    error ``noise |f| / eps`` and the truncation error ``eps^2 |f'''| / 6`` meet
    there for a unit-scale ``f``.
    """
    scale = max(1.0, float(np.max(np.abs(theta), initial=0.0)))
    return float(noise) ** (1.0 / 3.0) * scale


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
        in a Python loop (``4 theta.size`` calls). ``f`` must not modify its
        argument.
    theta : float or array_like
        Point at which to check (not modified); a Python float or 0-d array
        for a function of one variable.
    grad : float or array_like
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
        Each entry is differenced at ``epsilon`` and ``2 epsilon``; the two
        give its error estimate (Richardson), and entries whose difference
        from the analytic value is within that estimate but whose estimate is
        too large to certify them are not established (INCONCLUSIVE, with the
        reason). A gradient that vanishes to within ``f``'s noise is
        INCONCLUSIVE, not WRONG.

    Warns
    -----
    PrecisionWarning
        When ``f`` returns float32 (or float16) or its values are noisy beyond
        float64 rounding; the message names the step to use.

    Examples
    --------
    >>> import numpy as np
    >>> import fastgrad as fg
    >>> theta = np.array([1.0, -2.0, 0.5])
    >>> report = fg.check_function(lambda t: float(np.sum(t ** 3)), theta, 3 * theta ** 2)
    >>> report.verdict
    <Verdict.CORRECT: 0>
    >>> fg.check_function(np.sin, 0.3, np.cos(0.3)).verdict
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
    returned = f(point.copy())
    if isinstance(f, CPUDispatcher) and isinstance(returned, np.ndarray):
        raise TypeError(
            f"f must return a real scalar; the compiled f returned an array of shape "
            f"{returned.shape}, which its parallel kernel cannot store: return a float"
        )
    value = _scalar(returned)
    if not np.isfinite(value):
        raise ValueError(f"f(theta) is {value}; the function must be finite at theta")
    near = function_differences(f, point, epsilon) / (2.0 * epsilon)
    far = function_differences(f, point, 2.0 * epsilon) / (4.0 * epsilon)
    spread = np.abs(far - near) / 3.0
    seen = spread[np.isfinite(spread)]  # an f not finite at some theta +/- eps e_i
    noise = _noise(seen, value, epsilon, returned)
    step = suggested_step(noise, point) if noise > REDUCED_PRECISION else None
    # the spread of one entry can be small by chance where noise dominates: add the
    # typical spread (3 x its median, the size of the noise of one difference)
    typical = 3.0 * float(np.median(seen)) if seen.size else 0.0
    estimates = spread + typical + (ROUNDING + noise) * abs(value) / epsilon
    if noise > REDUCED_PRECISION:
        warnings.warn(
            f"f computes in less than float64: its values are noisy at about {noise:.1e} "
            f"relative, so centered differences at epsilon {epsilon:g} lose about "
            f"{noise / epsilon:.0e} relative; use epsilon ~ {step:.1g}",
            PrecisionWarning,
            stacklevel=2,
        )
    shape = point.shape
    return FunctionReport(
        analytic,
        near.reshape(shape),
        estimates.reshape(shape),
        value,
        epsilon,
        thresholds,
        noise,
        step,
    )


def _noise(spread, value, epsilon, returned):
    """Return the relative noise of ``f``'s values: its dtype's, or what the two steps show.

    Rounding noise ``eta |f|`` in each value moves a centered difference by
    about ``eta |f| / eps`` and differently at each step, while truncation
    moves it by ``eps^2 |f'''|``: the largest spread of the two steps, times
    ``eps / |f|``, is ``eta`` where noise dominates (the largest: a quantized ``f``
    often gives both steps the same difference). Noise beyond
    :data:`REDUCED_PRECISION` is taken to be at least float32's, since the
    spread of a few values underestimates a quantized ``f``'s.
    """
    dtype = np.asarray(returned).dtype
    if dtype.kind == "f" and dtype.itemsize < 8:
        return float(np.finfo(dtype).eps)
    if value == 0.0 or spread.size == 0:
        return 0.0
    seen = float(np.max(spread)) * epsilon / abs(value)
    if seen > REDUCED_PRECISION:
        return max(seen, float(np.finfo(np.float32).eps))
    return seen
