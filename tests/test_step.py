"""Advice on large steps: a warning that names the step to use."""

import re
import warnings

import pytest
from networks import case

import fastgrad as fg


def suggested(message):
    return float(re.search(r"use epsilon <= ([0-9.e+-]+)", message).group(1))


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_truncation_warning_names_a_step_that_passes(scale):
    net, params, X, Y = case([5, 4, 3], "tanh", "softmax", batch=6, seed=2)
    X = X * scale
    with pytest.warns(fg.StepWarning, match="truncation error") as caught:
        report = fg.check(net, params, X, Y, epsilon=0.05 / scale)
    message = str(caught[0].message)
    assert report.details["step"][0] == message
    step = suggested(message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        better = fg.check(net, params, X, Y, epsilon=step)
    assert better.verdict.passed and "step" not in better.details
    assert better.difference < report.difference


def test_kink_crossings_warning():
    net, params, X, Y = case([5, 8, 3], "relu", "softmax", batch=6, seed=3)
    with pytest.warns(fg.StepWarning) as caught:
        report = fg.check(net, params, X, Y, epsilon=0.5)
    messages = [str(w.message) for w in caught]
    assert any(re.search(r"\d+ of \d+ entries crossed a kink at epsilon 0.5", m) for m in messages)
    assert report.details["step"] == messages


def test_no_advice_at_the_default_step():
    net, params, X, Y = case([5, 8, 3], "relu", "softmax", batch=6, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = fg.check(net, params, X * 1e3, Y)
    assert "step" not in report.details
