"""Advice on the step of a check: when a large epsilon makes the verdict weak.

fastgrad's kernels carry each perturbation exactly, so a small step costs no
accuracy; a large one does, in two ways. The centered difference's
truncation error is ``eps^2 |J'''| / 6``, and through units of unit-scale
curvature (tanh, sigmoid, softmax) ``J'''`` relative to ``J'`` grows like the
square of the largest input a perturbed weight multiplies, so the relative
truncation is about ``(eps a_max)^2 / 6``. And the more entries cross a kink,
the more of the verdict rests on intervals instead of centered differences.
Where a step carries an ELU unit across 0, where its second derivative jumps
(from 1 to 0), the truncation is first order: about ``eps a_max / 4``
relative.
"""

import math

import numpy as np

from .kernels.activations import ELU
from .numerical import DEFAULT_EPSILON

TRUNCATION_SHARE = 0.1
"""Share of the CORRECT level the truncation error may take before a warning."""

KINK_SHARE = 0.01
"""Share of the computed entries that may cross a kink before a warning."""


class StepWarning(UserWarning):
    """The step of a check is so large that its verdict is weak."""


def largest_input(work):
    """Return the largest ``|input|`` any parameter multiplies (1 for biases)."""
    largest = 1.0
    for u in range(len(work.sizes) - 1):
        block = work.block(work.acts, u)
        if block.size:
            # max |x| without an |x| copy of the block (NaN when the block holds one, as before)
            largest = max(largest, float(np.maximum(block.max(), -block.min())))
    return largest


def curvature_breaks(work, move):
    """Return how many ELU unit-samples lie within ``move`` of 0, where phi'' jumps.

    Only ELU layers with ``alpha = 1``: with another alpha phi' jumps too, a
    kink, which the kernels find and count themselves.
    """
    count = 0
    for u in range(1, len(work.sizes) - 1):
        if work.codes[u] == ELU and work.act_params[u] == 1.0:
            count += int(np.count_nonzero(np.abs(work.block(work.pre, u)) <= move))
    return count


def step_advice(work, epsilon, thresholds, kinks, checked):
    """Return sentences on why ``epsilon`` makes the check weak, and which step to use.

    Parameters
    ----------
    work : Workspace
    epsilon : float
    thresholds : Thresholds
    kinks : int ndarray
        Kink crossings per entry.
    checked : bool ndarray
        Entries computed.

    Returns
    -------
    list of str
        Empty when the step is fine, and always at or below the default step
        (smaller steps gain nothing there, whatever the thresholds).
    """
    if epsilon <= DEFAULT_EPSILON:  # every warning below needs a step above the default
        return []
    advice = []
    reach = largest_input(work)
    move = epsilon * reach
    truncation = move * move / 6.0
    allowed = TRUNCATION_SHARE * thresholds.correct
    if truncation > allowed:
        safe = math.sqrt(6.0 * allowed) / reach
        advice.append(
            f"epsilon {epsilon:g} moves pre-activations by up to {move:.2g}: the centered "
            f"differences' truncation error may reach about {truncation:.1e} relative, enough "
            f"to move a correct gradient's verdict; use epsilon <= {safe:.1g} (fastgrad's "
            f"differences are exact to rounding at any small step; the default is "
            f"{DEFAULT_EPSILON:g})"
        )
    breaks = curvature_breaks(work, move)
    if breaks and move / 4.0 > allowed:
        safe = max(4.0 * allowed / reach, DEFAULT_EPSILON)
        advice.append(
            f"{breaks:,} ELU unit-samples lie within {move:.2g} of 0, where the second "
            f"derivative jumps: there the centered differences' truncation error is first "
            f"order, about {move / 4.0:.1e} relative; use epsilon <= {safe:.1g}"
        )
    computed = int(np.count_nonzero(checked))
    crossed = int(np.count_nonzero(checked & (kinks > 0)))
    if computed and crossed > KINK_SHARE * computed:
        advice.append(
            f"{crossed:,} of {computed:,} entries crossed a kink at epsilon {epsilon:g}: "
            "their comparison rests on one-sided differences, not centered ones; use a "
            f"smaller step (the default {DEFAULT_EPSILON:g})"
        )
    return advice
