"""Verdicts, their thresholds and the relative-error formulas they are read against."""

import enum
import math
from dataclasses import dataclass

import numpy as np

ROUNDING = float(np.finfo(np.float64).eps)
"""Unit roundoff of float64 (2.2e-16), the scale of the entry-error floor
(see :mod:`fastgrad._magnitude`)."""


class Verdict(enum.IntEnum):
    """How far an analytic gradient is from the numerical one, from best to worst.

    Verdicts are ordered by severity, and ``max`` of several verdicts is the
    overall one: WRONG or SUSPICIOUS if any part is, else INCONCLUSIVE if any
    part is, else the worse of CORRECT and ACCEPTABLE.

    ``INCONCLUSIVE`` means "not established": nothing was compared (a tensor
    not reached before Ctrl-C, entries that could not be verified), or the
    comparison has no grounds at this point. It is never a pass.
    """

    CORRECT = 0
    ACCEPTABLE = 1
    INCONCLUSIVE = 2
    SUSPICIOUS = 3
    WRONG = 4

    def __str__(self):
        return self.name

    @property
    def passed(self):
        """Whether the verdict is CORRECT or ACCEPTABLE."""
        return self <= Verdict.ACCEPTABLE

    @property
    def failed(self):
        """Whether the verdict is SUSPICIOUS or WRONG."""
        return self >= Verdict.SUSPICIOUS


ERROR_BANDS = (Verdict.CORRECT, Verdict.ACCEPTABLE, Verdict.SUSPICIOUS, Verdict.WRONG)
"""The verdicts an error can fall in, in the order of :class:`Thresholds`' levels."""

_BAND_VALUES = np.array([int(v) for v in ERROR_BANDS], dtype=np.int64)


@dataclass(frozen=True)
class Thresholds:
    """Error levels that separate the verdicts.

    An error ``e`` is CORRECT when ``e < correct``, ACCEPTABLE when
    ``correct <= e < acceptable``, SUSPICIOUS when ``acceptable <= e <
    suspicious`` and WRONG otherwise (NaN included).

    Parameters
    ----------
    correct : float, default 1e-7
    acceptable : float, default 1e-4
    suspicious : float, default 1e-2

    Examples
    --------
    >>> import fastgrad as fg
    >>> strict = fg.Thresholds(correct=1e-9, acceptable=1e-6, suspicious=1e-3)
    >>> strict.classify(1e-5)
    <Verdict.SUSPICIOUS: 3>
    """

    correct: float = 1e-7
    acceptable: float = 1e-4
    suspicious: float = 1e-2

    def __post_init__(self):
        levels = (self.correct, self.acceptable, self.suspicious)
        for name, value in zip(("correct", "acceptable", "suspicious"), levels, strict=True):
            if isinstance(value, bool) or not isinstance(
                value, (int, float, np.floating, np.integer)
            ):
                raise TypeError(f"Thresholds.{name} must be a number; got {value!r}")
            try:
                number = float(value)
            except OverflowError:  # an int beyond float64's range
                number = math.inf
            if not math.isfinite(number) or number <= 0:
                raise ValueError(
                    f"Thresholds.{name} must be a finite positive number; got {value!r}"
                )
            object.__setattr__(self, name, number)  # a plain float, as JSON takes it
        levels = (self.correct, self.acceptable, self.suspicious)
        object.__setattr__(self, "_edges", np.array(levels, dtype=np.float64))
        if not levels[0] < levels[1] < levels[2]:
            raise ValueError(
                "Thresholds must increase: correct < acceptable < suspicious; "
                f"got {levels[0]!r}, {levels[1]!r}, {levels[2]!r}"
            )

    def classify(self, error):
        """Return the :class:`Verdict` of an error (NaN is WRONG)."""
        if not error < self.suspicious:
            return Verdict.WRONG
        if error < self.correct:
            return Verdict.CORRECT
        if error < self.acceptable:
            return Verdict.ACCEPTABLE
        return Verdict.SUSPICIOUS

    def levels(self, errors):
        """Return the verdict of each of ``errors`` as an integer array (NaN is WRONG)."""
        errors = np.asarray(errors, dtype=np.float64)
        index = np.searchsorted(self._edges, errors, side="right")
        index[np.isnan(errors)] = len(ERROR_BANDS) - 1
        return _BAND_VALUES[index]

    def bands(self, errors):
        """Count how many of ``errors`` fall in each verdict band.

        Returns
        -------
        dict
            ``{Verdict: count}`` for each verdict an error can have (every
            verdict but INCONCLUSIVE), all present.
        """
        counts = np.bincount(self.levels(errors), minlength=len(Verdict))
        return {verdict: int(counts[verdict]) for verdict in ERROR_BANDS}

    @classmethod
    def coerce(cls, value):
        """Return ``Thresholds`` from ``None``, a ``Thresholds``, a 3-sequence or a dict."""
        if value is None:
            return DEFAULT_THRESHOLDS
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls(**value)
        if isinstance(value, (tuple, list)) and len(value) == 3:
            return cls(*value)
        raise TypeError(f"thresholds must be a Thresholds, a dict or three numbers; got {value!r}")


DEFAULT_THRESHOLDS = Thresholds()


def classify(error, thresholds=None):
    """Return the verdict of a relative error.

    Parameters
    ----------
    error : float
        A relative error, e.g. from :func:`relative_difference`.
    thresholds : Thresholds, optional
        Levels; the defaults are 1e-7, 1e-4 and 1e-2.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> import fastgrad as fg
    >>> fg.classify(1e-5)
    <Verdict.ACCEPTABLE: 1>
    >>> fg.classify(0.5)
    <Verdict.WRONG: 4>
    """
    return Thresholds.coerce(thresholds).classify(float(error))


def relative_difference(analytic, numerical):
    """Return ``||a - n|| / (||a|| + ||n||)`` (2-norms), 0 when both are 0.

    Parameters
    ----------
    analytic, numerical : array_like
        Same shape.

    Returns
    -------
    float
    """
    return difference_from_squares(squared_norms(analytic, numerical))


def squared_norms(analytic, numerical):
    """Return ``(||a - n||^2, ||a||^2, ||n||^2)``, from which differences combine.

    Uses numpy's pairwise summation, not BLAS, so no threads start inside a check.
    """
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numerical, dtype=np.float64).ravel()
    return (
        float(np.sum(np.square(a - n))),
        float(np.sum(np.square(a))),
        float(np.sum(np.square(n))),
    )


def difference_from_squares(squares):
    """Return ``||a - n|| / (||a|| + ||n||)`` from :func:`squared_norms` (0 when both are 0)."""
    gap, a, n = squares
    scale = math.sqrt(a) + math.sqrt(n)
    if scale == 0.0:
        return 0.0
    return math.sqrt(gap) / scale


def entry_errors(analytic, numerical, floor=0.0):
    """Return ``|a - n| / max(|a| + |n|, floor)`` entry by entry (0 where both are 0).

    The floor keeps entries whose gradient is near zero, where rounding
    dominates, from reading as large relative errors.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    scale = np.maximum(np.abs(a) + np.abs(n), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        errors = np.abs(a - n) / scale
    errors[scale == 0.0] = 0.0
    return errors
