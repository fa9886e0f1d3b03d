"""Hints that name the likely mistake."""

import numpy as np
import pytest

from fastgrad._hints import _few_entries
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
