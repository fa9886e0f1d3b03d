"""assert_gradients_close: silent when right, a numpy-style summary when not."""

import numpy as np
import pytest
from networks import case

import fastgrad as fg
from fastgrad.testing import assert_gradients_close


def test_passes_and_returns_the_report():
    net, params, X, Y = case([50, 30, 4], "relu", "softmax", batch=6, seed=0)
    report = assert_gradients_close(net, params, X, Y, net.gradients(params, X, Y))
    assert report.verdict == fg.Verdict.CORRECT


def test_message_summarizes_without_whole_arrays():
    net, params, X, Y = case([50, 30, 4], "relu", "softmax", batch=6, seed=0)
    grads = net.gradients(params, X, Y)
    grads["dW1"][7, 9] = grads["dW1"][7, 9] * 1.5 + 1e-3
    grads["dW1"][11, 2] += 1e-3
    with pytest.raises(AssertionError) as info:
        assert_gradients_close(net, params, X, Y, grads)
    message = str(info.value)
    assert "thresholds: correct < 1e-07, acceptable < 0.0001, suspicious < 0.01" in message
    assert f"Mismatched entries: 2 / {net.n_params:,}" in message
    assert "W1[7, 9]: analytic" in message and "numerical" in message
    assert "W1[11, 2]" in message
    assert "Max absolute difference among mismatched" in message
    assert "Max relative error" in message
    assert " W1: WRONG" in message or " W1: SUSPICIOUS" in message
    assert len(message) < 2000
    assert "[[" not in message


def test_allowed_verdict_can_be_relaxed():
    net, params, X, Y = case([5, 4, 3], "tanh", "softmax", batch=4, seed=1)
    grads = net.gradients(params, X, Y)
    grads["dW2"] = grads["dW2"] * (1 + 1e-3)
    with pytest.raises(AssertionError):
        assert_gradients_close(net, params, X, Y, grads)
    report = assert_gradients_close(net, params, X, Y, grads, allowed=fg.Verdict.SUSPICIOUS)
    assert report.verdict == fg.Verdict.SUSPICIOUS
    assert np.isfinite(report.difference)


def test_inconclusive_raises_unless_allowed_explicitly(monkeypatch):
    from fastgrad.numerical import Differences

    net = fg.MLP([3, 4, 2], hidden="tanh")
    params = net.init("xavier_normal", seed=0)
    X = np.random.default_rng(0).normal(size=(5, 3))
    y = np.array([0, 1, 0, 1, 1])

    def interrupted(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(Differences, "run", interrupted)
    with pytest.raises(AssertionError, match="Not established"):
        assert_gradients_close(net, params, X, y, allowed=fg.Verdict.WRONG)
    report = assert_gradients_close(net, params, X, y, allowed=fg.Verdict.INCONCLUSIVE)
    assert report.verdict is fg.Verdict.INCONCLUSIVE
