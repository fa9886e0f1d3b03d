"""Advice on large steps: a warning that names the step to use."""

import re
import warnings

import numpy as np
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


def _elu_at_zero_case():
    """Parameters and a batch of a 1-4-1 network whose first sample is blank at zero biases."""
    params = {
        "W1": np.array([[0.35], [0.82], [0.33], [-1.3]]),
        "b1": np.zeros(4),
        "W2": np.array([[0.18, 0.15, 0.014, 0.27]]),
        "b2": np.zeros(1),
    }
    X, Y = np.array([[0.0], [-0.48]]), np.array([[0.0], [1.0]])
    return params, X, Y


def test_elu_units_at_zero_warn_of_first_order_truncation():
    # a blank row at zero biases puts ELU units at 0, where phi'' jumps from 1 to 0: the
    # centered difference's error there is about eps/4, not eps^2, and a right gradient
    # reads SUSPICIOUS at eps 1e-4; the warning says so and its step passes
    net = fg.MLP([1, 4, 1], hidden="elu", output="sigmoid")
    params, X, Y = _elu_at_zero_case()
    with pytest.warns(fg.StepWarning, match="ELU") as caught:
        report = fg.check(net, params, X, Y, epsilon=1e-4)
    assert report.verdict.failed  # what the warning is for
    step = suggested(next(str(w.message) for w in caught if "ELU" in str(w.message)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fg.check(net, params, X, Y, epsilon=step).verdict.passed


def test_elu_with_another_alpha_is_a_kink_not_a_curvature_warning():
    # with alpha 0.5 phi' itself jumps at 0: the kernels count the crossings and bound
    # them by one-sided differences, so the check passes and the phi'' advice stays silent
    net = fg.MLP([1, 4, 1], hidden=("elu", 0.5), output="sigmoid")
    params, X, Y = _elu_at_zero_case()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = fg.check(net, params, X, Y, epsilon=1e-4)
    assert not [w for w in caught if "ELU" in str(w.message)]
    assert sum(t.kinks for t in report.tensors.values()) > 0
    assert report.verdict.passed, str(report)
