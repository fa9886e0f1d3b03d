"""taylor_test: observed orders of the first-order remainder."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastgrad as fg


def f(theta):
    return float(np.sum(np.sin(theta) * theta**2) + np.prod(np.cos(theta)))


def gradient(theta):
    others = np.array([np.prod(np.delete(np.cos(theta), i)) for i in range(theta.size)])
    return np.cos(theta) * theta**2 + 2 * theta * np.sin(theta) - np.sin(theta) * others


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_right_gradient_second_order_wrong_first(size, seed):
    theta = np.random.default_rng(seed).uniform(-2, 2, size=size)
    right = fg.taylor_test(f, theta, gradient(theta), seed=seed)
    assert right.verdict is fg.Verdict.CORRECT, str(right)
    usable = right.orders[~np.isnan(right.orders)]
    assert abs(usable[-1] - 2.0) <= 0.1
    wrong = gradient(theta)
    wrong[seed % size] += 0.1 * max(1.0, abs(wrong[seed % size]))
    result = fg.taylor_test(f, theta, wrong, seed=seed)
    assert result.verdict is fg.Verdict.WRONG, str(result)
    assert result.orders[~np.isnan(result.orders)][-1] < 1.2


def f32(theta):
    """``f`` computed in float32, returned as float32 or as a Python float."""
    t = np.asarray(theta, dtype=np.float32)
    return np.sum(np.sin(t) * t**2) + np.prod(np.cos(t))


@pytest.mark.parametrize("returns", [f32, lambda t: float(f32(t))], ids=["float32", "float"])
@pytest.mark.parametrize("seed", range(4))
def test_float32_noise_is_not_read_as_a_wrong_gradient(returns, seed):
    # the small steps' remainders are f's rounding (about 1e-7 |f|), not a first-order term
    theta = np.random.default_rng(seed).uniform(-2, 2, size=5)
    right = fg.taylor_test(returns, theta, gradient(theta), seed=seed)
    assert not right.verdict.failed, str(right)
    wrong = gradient(theta)
    wrong[seed] += 0.1 * max(1.0, abs(wrong[seed]))
    assert fg.taylor_test(returns, theta, wrong, seed=seed).verdict.failed


def test_remainders_are_the_definition():
    theta = np.array([0.3, -1.2, 2.0])
    v = np.array([1.0, 0.0, -2.0])
    g = gradient(theta)
    result = fg.taylor_test(f, theta, g, direction=v, steps=4, first_step=0.1)
    np.testing.assert_array_equal(result.steps, [0.1, 0.05, 0.025, 0.0125])
    for h, r in zip(result.steps, result.remainders, strict=True):
        assert r == pytest.approx(abs(f(theta + h * v) - f(theta) - h * v @ g), rel=1e-12)
    assert result.orders.shape == (3,)
    assert result.slope == pytest.approx(v @ g)


def test_small_error_is_not_read_as_second_order():
    theta = np.array([0.3, -1.2, 2.0])
    result = fg.taylor_test(f, theta, gradient(theta) * 1.0001)
    assert not result.verdict.passed, str(result)


def test_scalar_theta_linear_function_and_rounding():
    assert fg.taylor_test(np.sin, 0.4, np.cos(0.4)).verdict is fg.Verdict.CORRECT
    linear = fg.taylor_test(lambda t: float(3.0 * t), 2.0, 3.0)
    assert linear.verdict is fg.Verdict.CORRECT and "linear" in linear.reason
    assert fg.taylor_test(lambda t: float(3.0 * t), 2.0, 3.5).verdict is fg.Verdict.WRONG
    # steps so small that every remainder is rounding and no order can be read
    tiny = fg.taylor_test(np.sin, np.array(0.4), 1.3, first_step=1e-14, steps=3)
    assert tiny.verdict is not fg.Verdict.CORRECT


def test_text_and_dict_forms():
    theta = np.array([0.3, -1.2])
    result = fg.taylor_test(f, theta, gradient(theta))
    text = str(result)
    assert "remainder" in text and text.rstrip().splitlines()[-1].startswith("CORRECT")
    data = result.to_dict()
    assert data["verdict"] == "CORRECT" and len(data["orders"]) == len(data["steps"]) - 1


def test_bad_input():
    theta = np.zeros(3)
    with pytest.raises(ValueError, match="grad has shape"):
        fg.taylor_test(f, theta, np.zeros(2))
    with pytest.raises(ValueError, match="direction has shape"):
        fg.taylor_test(f, theta, np.zeros(3), direction=np.ones(2))
    with pytest.raises(ValueError, match="all zero"):
        fg.taylor_test(f, theta, np.zeros(3), direction=np.zeros(3))
    with pytest.raises(ValueError, match="steps"):
        fg.taylor_test(f, theta, np.zeros(3), steps=2)
    with pytest.raises(TypeError, match="callable"):
        fg.taylor_test(3, theta, np.zeros(3))
    with pytest.raises(TypeError, match="real scalar"):
        fg.taylor_test(lambda t: t, theta, np.zeros(3))
