"""The Taylor remainder test: a gradient check with no tolerance to tune.

For a smooth ``f`` and a direction ``v``, the first-order remainder
``r(h) = |f(theta + h v) - f(theta) - h v . grad|`` is ``O(h^2)`` when
``grad`` is the gradient and only ``O(h)`` when it is not. Halving ``h``
should divide the remainder by 4 (observed order 2) for a right gradient and
by 2 (order 1) for a wrong one; the verdict reads the orders, not a
threshold. dolfin-adjoint's ``taylor_test`` checks adjoints the same way
(Farrell et al., SIAM J. Sci. Comput. 35, 2013).
"""

import numbers

import numpy as np

from ._packing import as_float64, require_finite
from .thresholds import ROUNDING, Verdict

__all__ = ["TaylorResult", "taylor_test"]

DEFAULT_STEPS = 12
"""How many steps ``h``, each half the one before: eleven observed orders."""

ORDER_SETTLED = 0.1
"""The last observed order within this of 2, and not moving away from it,
reads as second order (a right gradient). Orders that drift from 2 at the small
steps are a first-order error surfacing (or, above 2, cancelling the
second-order term), which smaller steps would expose."""

LINEAR_MARGIN = 1e4
"""Remainders all at rounding level read as a verified slope only when the change
of ``f`` over the largest step is this many times the rounding level."""

ORDER_WRONG = 1.2
"""An observed order at or below this, at the smallest usable step, reads as first order."""

NOISE_GROWTH = 1e3
"""Remainders under ``NOISE_GROWTH u |f|`` are rounding, not remainders."""

TAIL_DECAY = 0.5
"""Smallest steps whose remainders shrink by less than this order on average
are the noise of ``f`` (an ``f`` computed in float32), not a remainder:
a remainder of order 1 or 2 keeps shrinking."""

TAIL_MARGIN = 32.0
"""Remainders count as such only above this many times the noise seen in the tail
(noise of 1/32 of a remainder moves an observed order by at most 0.09)."""


def tail_noise(remainders):
    """Return the noise level the smallest steps show, or 0 when their remainders keep shrinking.

    Over the last third of the steps (at least three), the remainders of a
    smooth ``f`` shrink by an order of 1 (wrong gradient) or 2 (right one)
    per halving; noise in ``f``'s values does not shrink. When the tail's
    average order is below :data:`TAIL_DECAY`, its median remainder times
    :data:`TAIL_MARGIN` is taken as the noise.
    """
    tail = remainders[-max(3, remainders.size // 3) :]
    if tail[-1] <= 0.0 or tail[0] <= 0.0:
        return 0.0
    decay = np.log2(tail[0] / tail[-1]) / (tail.size - 1)
    return TAIL_MARGIN * float(np.median(tail)) if decay < TAIL_DECAY else 0.0


class TaylorResult:
    """The outcome of :func:`taylor_test`.

    Attributes
    ----------
    steps : ndarray
        The steps ``h``, halving.
    remainders : ndarray
        ``|f(theta + h v) - f(theta) - h v . grad|`` at each step.
    orders : ndarray
        ``log2(r(h) / r(h / 2))`` between consecutive steps (NaN where either
        remainder is at rounding level, or at the noise level of an ``f``
        whose smallest steps' remainders stop shrinking: see :func:`tail_noise`).
    verdict : Verdict
        Read from the usable orders, each taken as the median of three
        consecutive ones (so that one order spoiled by noise cannot decide):
        CORRECT when the last is within 0.1 of 2 and not
        moving away from it (or every remainder is at rounding level while
        ``f`` changes well above it: ``f`` is linear along ``v`` and the
        slope agrees), WRONG when the last usable order is at most 1.2,
        SUSPICIOUS otherwise (the orders have not settled at 2), INCONCLUSIVE
        when no two consecutive remainders are above rounding.
    reason : str
        What the verdict was read from.
    slope : float
        ``v . grad``, the claimed directional derivative.
    """

    def __init__(self, steps, remainders, noise, slope, change=0.0):
        self.steps = steps
        self.remainders = remainders
        self.slope = float(slope)
        self._resolved = abs(change) >= LINEAR_MARGIN * noise[0]
        noise = np.maximum(noise, tail_noise(remainders))
        usable = remainders > noise
        with np.errstate(divide="ignore", invalid="ignore"):
            orders = np.log2(remainders[:-1] / remainders[1:])
        self.orders = np.where(usable[:-1] & usable[1:], orders, np.nan)
        self.verdict, self.reason = self._read(usable)

    def _read(self, usable):
        seen = self.orders[~np.isnan(self.orders)]
        if seen.size >= 3:  # one order spoiled by noise must not decide: medians of three
            seen = np.median(np.lib.stride_tricks.sliding_window_view(seen, 3), axis=1)
        if not usable.any() and self._resolved:
            return (
                Verdict.CORRECT,
                "every remainder is at rounding level: f is linear along the direction and "
                "the gradient's slope agrees",
            )
        if seen.size == 0:
            return (
                Verdict.INCONCLUSIVE,
                "no two consecutive remainders are above rounding: take larger steps",
            )
        last = np.abs(seen[-2:] - 2.0)
        if last[-1] <= ORDER_SETTLED and last[-1] <= last[0] + 0.2 * ORDER_SETTLED:
            return Verdict.CORRECT, f"observed orders {_orders(seen)}: second order"
        if seen[-1] <= ORDER_WRONG:
            return (
                Verdict.WRONG,
                f"observed orders {_orders(seen)}: first order, the gradient is wrong "
                "along this direction (or f is not smooth here)",
            )
        return (
            Verdict.SUSPICIOUS,
            f"observed orders {_orders(seen)}: not settled at 2 (a small error in the gradient? "
            "take more steps)",
        )

    def to_dict(self):
        """Return a JSON-ready dict."""
        return {
            "verdict": self.verdict.name,
            "reason": self.reason,
            "slope": self.slope,
            "steps": self.steps.tolist(),
            "remainders": self.remainders.tolist(),
            "orders": [None if np.isnan(o) else float(o) for o in self.orders],
        }

    def __repr__(self):
        return f"<TaylorResult {self.verdict.name} orders={_orders(self.orders)}>"

    def __str__(self):
        lines = ["Taylor remainder test", "h           remainder   order"]
        for i, (h, r) in enumerate(zip(self.steps, self.remainders, strict=True)):
            order = "" if i == 0 or np.isnan(self.orders[i - 1]) else f"{self.orders[i - 1]:.2f}"
            lines.append(f"{h:<11.3e} {r:<11.3e} {order}")
        lines.append(f"{self.verdict.name}: {self.reason}")
        return "\n".join(lines)


def _orders(orders):
    return "[" + ", ".join("-" if np.isnan(o) else f"{o:.2f}" for o in orders) + "]"


def _value(f, point):
    value = f(point.copy())
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    if not isinstance(value, (numbers.Real, np.floating, np.integer)) or isinstance(value, bool):
        raise TypeError(f"f must return a real scalar; it returned {type(value).__name__}")
    return float(value)


def taylor_test(f, theta, grad, direction=None, steps=DEFAULT_STEPS, *, first_step=None, seed=0):
    """Check a gradient by the order of the first-order Taylor remainder.

    Parameters
    ----------
    f : callable
        ``f(theta) -> float``; must not modify its argument.
    theta : float or array_like
        Point of the test (not modified).
    grad : float or array_like
        The claimed gradient of ``f`` at ``theta``, same shape.
    direction : array_like, optional
        The direction ``v``, same shape; by default a random one (seeded by
        ``seed``) scaled to unit length.
    steps : int, default 12
        How many steps ``h``, each half the one before.
    first_step : float, optional
        The largest ``h``; by default ``0.01 max(1, max |theta|) / max |v|``.
    seed : int, default 0
        Seed of the random direction.

    Returns
    -------
    TaylorResult
        ``.remainders``, ``.orders`` (about 2 for a right gradient, about 1
        for a wrong one), ``.verdict``.

    Examples
    --------
    >>> import numpy as np
    >>> import fastgrad as fg
    >>> f = lambda t: float(np.sum(np.sin(t)))
    >>> theta = np.array([0.3, -1.2, 2.0])
    >>> fg.taylor_test(f, theta, np.cos(theta)).verdict
    <Verdict.CORRECT: 0>
    >>> fg.taylor_test(f, theta, 1.01 * np.cos(theta)).verdict
    <Verdict.WRONG: 4>
    """
    if not callable(f):
        raise TypeError(f"f must be callable; got {type(f).__name__}")
    point = as_float64("theta", theta, copy=True)
    require_finite("theta", point)
    analytic = as_float64("grad", grad)
    if analytic.shape != point.shape:
        raise ValueError(f"grad has shape {analytic.shape}; expected theta's shape {point.shape}")
    if direction is None:
        v = np.random.default_rng(seed).normal(size=point.shape)
        v = v / max(float(np.linalg.norm(v)), np.finfo(float).tiny)
    else:
        v = as_float64("direction", direction)
        if v.shape != point.shape:
            raise ValueError(f"direction has shape {v.shape}; expected theta's shape {point.shape}")
        require_finite("direction", v)
        if not np.any(v):
            raise ValueError("direction must not be all zero")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 3:
        raise ValueError(f"steps must be an integer of at least 3; got {steps!r}")
    if first_step is None:
        first_step = 0.01 * max(1.0, float(np.max(np.abs(point)))) / float(np.max(np.abs(v)))
    elif not isinstance(first_step, numbers.Real) or not 0 < first_step < np.inf:
        raise ValueError(f"first_step must be a finite positive number; got {first_step!r}")
    base = _value(f, point)
    if not np.isfinite(base):
        raise ValueError(f"f(theta) is {base}; the function must be finite at theta")
    slope = float(np.sum(v * analytic))
    h = float(first_step) * 0.5 ** np.arange(int(steps))
    values = np.array([_value(f, point + step * v) for step in h])
    remainders = np.abs(values - base - h * slope)
    noise = NOISE_GROWTH * ROUNDING * np.maximum(abs(base), np.abs(values))
    return TaylorResult(h, remainders, noise, slope, change=values[0] - base)
