"""The compare kernel against the formulas written out in numpy."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fastgrad.kernels.compare import compare


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
