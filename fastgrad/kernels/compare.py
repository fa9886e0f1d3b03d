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


@jit()
def judge(analytic, numerical, checked, kinks, bounds, starts, judged, flags, counts):
    """Decide which computed entries are compared, and against what, in one pass.

    An entry whose evaluations crossed a kink (``kinks > 0``) is compared with
    the nearest point of its interval when it has one, else it is left open
    (not compared); an entry whose centered difference is not finite is open
    too. Intervals are stored for the kinked entries only, so memory does not
    grow with the parameters that crossed none.

    Parameters
    ----------
    analytic, numerical : ndarray
        Flat gradients (``numerical`` is NaN where not computed).
    checked : bool ndarray
        Entries whose numerical gradient was computed.
    kinks : int ndarray
        Kink crossings per entry.
    bounds : tuple of (int64 ndarray, ndarray, ndarray, bool ndarray)
        ``(kink_index, kink_lo, kink_hi, unverifiable)``: the computed
        entries that crossed a kink (ascending), each one's interval and
        whether it does not bound backprop's convention. Empty arrays when
        the kernel gave no intervals (every kink entry is then open), and
        an empty ``unverifiable`` when none is flagged.
    starts : int64 ndarray
        Offset of each tensor, then the total length.
    judged : ndarray
        Output, one per ``kink_index``: the value the entry is compared with,
        its analytic value clipped to its interval (its numerical value where
        open). Every other entry is compared with its numerical value.
    flags : tuple of 4 bool ndarray
        Output, per entry: ``open`` (not compared), ``used`` (compared),
        ``unverified`` and ``not_finite``.
    counts : int64 ndarray
        Output, ``(tensors, 3)``: per tensor, the entries used, unverified
        and not finite.

    Returns
    -------
    (bool, float, float)
        Whether some kink entry was clipped to its interval; the largest
        ``|a| + |judged|`` and the largest ``|judged|`` of the used entries
        (0 when none; NaN propagates as ``numpy.max`` does).
    """
    kink_index, kink_lo, kink_hi, unverifiable = bounds
    opened, used, unverified, not_finite = flags
    n_kinked = kink_index.shape[0]
    intervals = n_kinked > 0
    flagged = unverifiable.shape[0] > 0
    p = 0  # the first interval at or after the entry
    clipped = False
    largest = 0.0
    scale = 0.0
    nan_total = False
    nan_size = False
    for t in range(starts.shape[0] - 1):
        n_used = 0
        n_unverified = 0
        n_not_finite = 0
        for e in range(starts[t], starts[t + 1]):
            value = numerical[e]
            if not checked[e]:
                opened[e] = False
                used[e] = False
                unverified[e] = False
                not_finite[e] = False
                continue
            is_open = False
            if kinks[e] > 0:
                while p < n_kinked and kink_index[p] < e:
                    p += 1
                bounded = p < n_kinked and kink_index[p] == e
                is_open = not bounded or (flagged and unverifiable[p])
                if not is_open:
                    # np.clip: the larger of a and low, then the smaller of that and high;
                    # a NaN propagates
                    low = kink_lo[p]
                    high = kink_hi[p]
                    value = analytic[e]
                    if math.isnan(low) or low > value:
                        value = low
                    if math.isnan(high) or high < value:
                        value = high
                    clipped = True
                if bounded:
                    judged[p] = value
            unverified[e] = intervals and is_open
            n_unverified += intervals and is_open
            infinite = not math.isfinite(numerical[e])
            not_finite[e] = infinite
            n_not_finite += infinite
            is_open = is_open or infinite
            opened[e] = is_open
            used[e] = not is_open
            if not is_open:
                n_used += 1
                size = abs(value)
                total = abs(analytic[e]) + size
                if total > largest:
                    largest = total
                if size > scale:
                    scale = size
                nan_total = nan_total or math.isnan(total)
                nan_size = nan_size or math.isnan(size)
        counts[t, 0] = n_used
        counts[t, 1] = n_unverified
        counts[t, 2] = n_not_finite
    # as numpy.max: any NaN makes the largest NaN
    if nan_total:
        largest = math.nan
    if nan_size:
        scale = math.nan
    return clipped, largest, scale
