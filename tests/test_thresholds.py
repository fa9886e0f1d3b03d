"""Verdict levels and the relative-error formulas."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastgrad as fg
from fastgrad.thresholds import entry_errors


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (0.0, "CORRECT"),
        (9.99e-8, "CORRECT"),
        (1e-7, "ACCEPTABLE"),
        (5e-5, "ACCEPTABLE"),
        (1e-4, "SUSPICIOUS"),
        (9.9e-3, "SUSPICIOUS"),
        (1e-2, "WRONG"),
        (1.0, "WRONG"),
        (math.inf, "WRONG"),
        (math.nan, "WRONG"),
    ],
)
def test_classify_at_and_between_the_levels(error, verdict):
    assert fg.classify(error) == fg.Verdict[verdict]


def test_custom_thresholds_and_coercion():
    strict = fg.Thresholds(correct=1e-9, acceptable=1e-6, suspicious=1e-3)
    assert fg.classify(1e-5, strict) == fg.Verdict.SUSPICIOUS
    assert fg.classify(1e-5, (1e-9, 1e-6, 1e-3)) == fg.Verdict.SUSPICIOUS
    assert (
        fg.classify(1e-5, {"correct": 1e-9, "acceptable": 1e-6, "suspicious": 1e-3})
        == fg.Verdict.SUSPICIOUS
    )
    with pytest.raises(ValueError, match="must increase"):
        fg.Thresholds(correct=1e-3, acceptable=1e-4, suspicious=1e-2)
    with pytest.raises(ValueError, match="positive"):
        fg.Thresholds(correct=-1.0)
    with pytest.raises(TypeError):
        fg.Thresholds(correct="small")
    with pytest.raises(TypeError):
        fg.classify(1e-5, "strict")


def test_verdicts_are_ordered():
    assert fg.Verdict.CORRECT < fg.Verdict.ACCEPTABLE < fg.Verdict.SUSPICIOUS < fg.Verdict.WRONG
    assert max(fg.Verdict.ACCEPTABLE, fg.Verdict.WRONG) is fg.Verdict.WRONG
    assert fg.Verdict.ACCEPTABLE.passed and not fg.Verdict.SUSPICIOUS.passed
    assert str(fg.Verdict.WRONG) == "WRONG"


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), st.floats(-3, 3))
def test_relative_difference_matches_the_course_formula(values, shift):
    a = np.array(values)
    n = a + shift
    scale = np.sqrt(np.sum(a**2)) + np.sqrt(np.sum(n**2))
    expected = 0.0 if scale == 0 else np.sqrt(np.sum((a - n) ** 2)) / scale
    assert fg.relative_difference(a, n) == pytest.approx(expected, rel=1e-12, abs=0)


def test_relative_difference_of_zeros_is_zero():
    assert fg.relative_difference(np.zeros(3), np.zeros(3)) == 0.0
    assert fg.relative_difference(np.zeros(3), np.ones(3)) == 1.0


def test_entry_errors_use_the_floor():
    a = np.array([1.0, 1e-12, 0.0, 2.0])
    n = np.array([1.1, 2e-12, 0.0, -2.0])
    errors = entry_errors(a, n, floor=1e-9)
    assert errors[0] == pytest.approx(0.1 / 2.1)
    assert errors[1] == pytest.approx(1e-12 / 1e-9)
    assert errors[2] == 0.0
    assert errors[3] == 1.0


def test_bands_count_each_level():
    counts = fg.Thresholds().bands([0.0, 1e-8, 1e-6, 1e-3, 0.5, np.nan])
    assert counts == {
        fg.Verdict.CORRECT: 2,
        fg.Verdict.ACCEPTABLE: 1,
        fg.Verdict.SUSPICIOUS: 1,
        fg.Verdict.WRONG: 2,
    }


def test_inconclusive_ranks_between_passing_and_failing():
    # the overall verdict is max(): a failure outranks "not established", which outranks a pass
    assert fg.Verdict.ACCEPTABLE < fg.Verdict.INCONCLUSIVE < fg.Verdict.SUSPICIOUS
    assert max(fg.Verdict.CORRECT, fg.Verdict.INCONCLUSIVE) is fg.Verdict.INCONCLUSIVE
    assert max(fg.Verdict.WRONG, fg.Verdict.INCONCLUSIVE) is fg.Verdict.WRONG
    assert not fg.Verdict.INCONCLUSIVE.passed and not fg.Verdict.INCONCLUSIVE.failed
    assert fg.Verdict.SUSPICIOUS.failed and fg.Verdict.WRONG.failed


def test_no_error_falls_in_the_inconclusive_band():
    levels = fg.Thresholds().levels([0.0, 1e-6, 1e-3, 0.5, np.nan])
    assert list(levels) == [0, 1, 3, 4, 4]
    assert fg.Verdict.INCONCLUSIVE not in fg.Thresholds().bands([1e-3])
