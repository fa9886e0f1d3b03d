"""Hints that name the likely mistake."""

import numpy as np
import pytest

from fastgrad._hints import _few_entries, fitted_factor
from fastgrad.thresholds import Thresholds


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_few_entries_names_at_most_limit_entries(limit):
    a = np.linspace(1.0, 2.0, 100)
    n = a.copy()
    wrong = [7, 40, 81]
    a[wrong] *= 2.0
    errors = np.abs(a - n) / (np.abs(a) + np.abs(n))
    checked = np.ones(100, dtype=bool)
    hint = _few_entries("W1", a, n, checked, errors, limit, Thresholds(), checked.sum())
    if limit < len(wrong):
        assert hint is None
    else:
        assert hint.startswith("only 3 entries are wrong")
        assert all(f"W1[{i}]" in hint for i in wrong)


@pytest.mark.parametrize("scale", [1.0, 1e-200, 1e200, 1e300])
def test_fitted_factor_is_the_same_at_any_magnitude(scale):
    # squares of entries above 1e154 overflow: the factor must not come out NaN there
    n = np.random.default_rng(0).normal(size=20) * scale
    assert fitted_factor(0.5 * n, n) == pytest.approx(0.5, rel=1e-12)
    assert fitted_factor(n + np.roll(n, 1), n) is None
