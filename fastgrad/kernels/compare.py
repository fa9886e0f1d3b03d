"""One pass over analytic and numerical gradients: entry errors and per-tensor sums."""

import math

from ._jit import jit


@jit()
def compare(
    analytic, numerical, checked, left_out, starts, floor, errors, squares, largest, counts
):
    """Compare two flat gradients tensor by tensor.

    Parameters
    ----------
    analytic, numerical : ndarray
        Flat gradients (``numerical`` is NaN where not computed).
    checked : bool ndarray
        Entries whose numerical gradient was computed.
    left_out : bool ndarray
        Computed entries set aside (kinks without an interval, unverifiable
        ones, a difference that is not finite): not compared.
    starts : int64 ndarray
        Offset of each tensor, then the total length.
    floor : float
        Floor of the entry error's denominator.
    errors : ndarray
        Output: ``|a - n| / max(|a| + |n|, floor)`` of the compared entries
        (0 where both are 0), NaN elsewhere.
    squares : ndarray
        Output, ``(tensors, 3)``: ``||a - n||^2, ||a||^2, ||n||^2`` over the
        compared entries of each tensor.
    largest : ndarray
        Output: each tensor's largest entry error (0 when none compared).
    counts : int64 ndarray
        Output: each tensor's number of computed entries.
    """
    for t in range(starts.shape[0] - 1):
        gap2 = 0.0
        a2 = 0.0
        n2 = 0.0
        top = 0.0
        count = 0
        for e in range(starts[t], starts[t + 1]):
            if not checked[e]:
                errors[e] = math.nan
                continue
            count += 1
            if left_out[e]:
                errors[e] = math.nan
                continue
            a = analytic[e]
            n = numerical[e]
            gap = a - n
            gap2 += gap * gap
            a2 += a * a
            n2 += n * n
            scale = max(abs(a) + abs(n), floor)
            error = abs(gap) / scale if scale > 0.0 else 0.0
            errors[e] = error
            top = max(top, error)
        squares[t, 0] = gap2
        squares[t, 1] = a2
        squares[t, 2] = n2
        largest[t] = top
        counts[t] = count
