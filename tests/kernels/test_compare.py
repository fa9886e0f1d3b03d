"""The compare kernel against the formulas written out in numpy."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fastgrad.kernels.compare import compare, judge


@given(seed=st.integers(0, 2**32 - 1), floor=st.sampled_from([0.0, 1e-12, 1e-3]))
def test_compare_matches_numpy(seed, floor):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, size=rng.integers(1, 5))
    starts = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    n = int(starts[-1])
    analytic = rng.normal(size=n) * 10.0 ** rng.integers(-6, 3, size=n)
    numerical = analytic * (1 + rng.normal(size=n) * 10.0 ** rng.integers(-12, 0, size=n))
    numerical[rng.random(n) < 0.1] = 0.0
    analytic[rng.random(n) < 0.1] = 0.0
    checked = rng.random(n) < 0.8
    numerical[~checked] = np.nan
    left_out = rng.random(n) < 0.2
    t = starts.size - 1
    errors, squares = np.empty(n), np.empty((t, 3))
    largest, counts = np.empty(t), np.empty(t, dtype=np.int64)
    compare(analytic, numerical, checked, left_out, starts, floor, errors, squares, largest, counts)

    used = checked & ~left_out
    a, m = analytic, numerical
    scale = np.maximum(np.abs(a) + np.abs(m), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(scale > 0, np.abs(a - m) / scale, 0.0)
    np.testing.assert_allclose(errors[used], expected[used], rtol=1e-15)
    assert np.isnan(errors[~used]).all()
    for k in range(t):
        part = slice(starts[k], starts[k + 1])
        u = used[part]
        np.testing.assert_allclose(
            squares[k],
            [np.sum((a[part] - m[part])[u] ** 2), np.sum(a[part][u] ** 2), np.sum(m[part][u] ** 2)],
            rtol=1e-13,
        )
        assert largest[k] == (expected[part][u].max() if u.any() else 0.0)
        assert counts[k] == checked[part].sum()


def _judged_by_numpy(analytic, numerical, checked, kinks, lo, hi, unverifiable):
    """The judging of kink and not-finite entries written out in numpy (the report's old code)."""
    kinked = checked & (kinks > 0)
    judged = numerical
    opened = kinked
    unverified = np.zeros_like(kinked)
    if lo is not None:
        opened = kinked & unverifiable if unverifiable is not None else np.zeros_like(kinked)
        unverified = opened
        bounded = kinked & ~opened
        if bounded.any():
            judged = numerical.copy()
            judged[bounded] = np.clip(analytic[bounded], lo[bounded], hi[bounded])
    not_finite = checked & ~np.isfinite(numerical)
    opened = opened | not_finite
    used = checked & ~opened
    largest = float(np.max(np.abs(analytic[used]) + np.abs(judged[used]), initial=0.0))
    scale = float(np.max(np.abs(judged[used]), initial=0.0))
    return judged, opened, used, unverified, not_finite, largest, scale


@given(
    seed=st.integers(0, 2**32 - 1),
    intervals=st.sampled_from(["none", "without flags", "with flags"]),
    spoil=st.sampled_from([None, "inf", "nan analytic", "nan bound"]),
)
def test_judge_matches_numpy(seed, intervals, spoil):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, size=rng.integers(1, 5))
    starts = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    n = int(starts[-1])
    analytic = rng.normal(size=n)
    numerical = analytic + rng.normal(size=n) * 1e-3
    checked = rng.random(n) < 0.8
    numerical[~checked] = np.nan
    kinks = np.where(rng.random(n) < 0.3, rng.integers(1, 3, size=n), 0).astype(np.int64)
    width = np.abs(rng.normal(size=n)) * rng.integers(0, 2, size=n)
    lo, hi, unverifiable = numerical - width, numerical + width, rng.random(n) < 0.3
    where = rng.integers(0, n)
    if spoil == "inf" and checked[where]:
        numerical[where] = np.inf
    if spoil == "nan analytic":
        analytic[where] = np.nan
    if spoil == "nan bound":  # on a kink entry that is judged by its interval
        checked[where], kinks[where], unverifiable[where] = True, 1, False
        numerical[where] = analytic[where]
        lo[where] = np.nan
    if intervals == "none":
        lo = hi = unverifiable = None
    elif intervals == "without flags":
        unverifiable = None
    flags = tuple(np.empty(n, dtype=bool) for _ in range(4))
    counts = np.empty((starts.size - 1, 3), dtype=np.int64)
    # intervals are given for the computed entries that crossed a kink only
    index = np.flatnonzero(checked & (kinks > 0)) if lo is not None else np.empty(0, np.int64)
    nothing = np.empty(0)
    bounds = (
        index,
        nothing if lo is None else lo[index],
        nothing if hi is None else hi[index],
        np.empty(0, dtype=bool) if unverifiable is None else unverifiable[index],
    )
    at_kinks = np.empty(index.size)
    clipped, largest, scale = judge(
        analytic, numerical, checked, kinks, bounds, starts, at_kinks, flags, counts
    )
    judged = numerical.copy()
    judged[index] = at_kinks

    expected = _judged_by_numpy(analytic, numerical, checked, kinks, lo, hi, unverifiable)
    want_judged, opened, used, unverified, not_finite, want_largest, want_scale = expected
    np.testing.assert_array_equal(judged, want_judged)  # bit for bit, NaN where NaN
    assert clipped == (want_judged is not numerical)
    np.testing.assert_array_equal(flags[0], opened)
    np.testing.assert_array_equal(flags[1], used)
    np.testing.assert_array_equal(flags[2], unverified)
    np.testing.assert_array_equal(flags[3], not_finite)
    np.testing.assert_array_equal([largest, scale], [want_largest, want_scale])
    for t in range(starts.size - 1):
        part = slice(starts[t], starts[t + 1])
        assert list(counts[t]) == [used[part].sum(), unverified[part].sum(), not_finite[part].sum()]
