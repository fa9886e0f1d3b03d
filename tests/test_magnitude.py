"""The size of a gradient's terms, the comparison floor and the vanishing test."""

import naive
import numpy as np
import pytest
from hypothesis import given, settings
from strategies import build_case, cases

import fastgrad as fg
from fastgrad import _magnitude, _passes
from fastgrad._magnitude import (
    ROUNDING_GROWTH,
    comparison_floor,
    gradient_magnitude,
    gradient_scale,
    vanishes,
)
from fastgrad.thresholds import ROUNDING


def magnitude_of(case):
    work, _ = case.net.workspace(case.params, case.X_given, case.Y_given, case.layout)
    return case.net.packing.unpack(gradient_magnitude(work), prefix="d")


@settings(max_examples=60, deadline=None)
@given(cases())
def test_magnitude_bounds_the_gradient_and_scale_bounds_the_magnitude(case):
    exact = naive.gradients(*case.naive_args)
    bound = magnitude_of(case)
    for key, value in exact.items():
        assert np.all(np.abs(value).ravel() <= bound[key].ravel() * (1 + 1e-12) + 1e-300), key
    work, _ = case.net.workspace(case.params, case.X_given, case.Y_given, case.layout)
    largest = max(b.max() for b in bound.values())
    assert largest <= gradient_scale(work) * (1 + 1e-12)
    # the bound is loose only by the spread of the inputs over a layer's width
    assert gradient_scale(work) <= largest * max(case.sizes) + 1e-300


def numpy_scale(work):
    """The gradient's scale by numpy: the magnitude's terms carried by einsum, summed by numpy."""
    scale = 0.0
    for u, delta, weight in _magnitude._backward_terms(work):
        a_in = work.inputs if u == 1 else work.blocks.acts[u - 1]
        reach = np.maximum.reduce(np.abs(a_in), axis=1, initial=0.0)
        largest = np.maximum.reduce(reach @ delta, initial=0.0)
        if work.l2:
            largest += work.l2 * np.abs(weight).max()
        bias = np.maximum.reduce(delta.sum(axis=0), initial=0.0)
        scale = max(scale, largest / work.batch, bias / work.batch)
    return scale


@settings(max_examples=60, deadline=None)
@given(cases())
def test_the_compiled_scale_is_numpys_to_a_few_ulps(case):
    work, _ = case.net.workspace(case.params, case.X_given, case.Y_given, case.layout)
    ours = gradient_scale(work)
    reference = numpy_scale(work)
    assert ours >= 0.0
    # the same sums in another order, through at most a few layers
    assert abs(ours - reference) <= 8 * max(case.sizes) * ROUNDING * reference
    # a network of many smooth units takes the layer-by-layer route: the same bound
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_magnitude, "SMOOTH_TERMS", -1)
        by_layer = gradient_scale(work)
    assert abs(by_layer - reference) <= 8 * max(case.sizes) * ROUNDING * reference


@pytest.mark.parametrize("hidden", ["relu", "leaky_relu", "tanh", "sigmoid", "elu", "softplus"])
@pytest.mark.parametrize("reduction", ["course", "sum"])
def test_the_compiled_scale_follows_activations_dropout_l2_and_convention(hidden, reduction):
    case = build_case([5, 7, 6, 3], hidden, "mse", batch=9, seed=7)
    net = fg.MLP(
        [5, 7, 6, 3], hidden=hidden, output="softmax", l2=40.0, dropout=0.3, reduction=reduction
    )
    Y = np.random.default_rng(7).random((9, 3))  # soft targets: sum(y) is not 1
    work, _ = net.workspace(case.params, case.X, Y)
    assert work.masked
    ours = gradient_scale(work)
    reference = numpy_scale(work)
    assert abs(ours - reference) <= 64 * ROUNDING * reference
    # each part of the bound counts: l2 adds to it, the convention's factor multiplies the data's
    plain = net.replace(l2=0.0)
    data = gradient_scale(plain.workspace(case.params, case.X, Y)[0])
    assert data < ours
    course = gradient_scale(plain.replace(reduction="course").workspace(case.params, case.X, Y)[0])
    assert data == pytest.approx(course * plain.data_scale(9), rel=1e-14)


def test_magnitude_is_the_gradient_when_no_term_cancels():
    # every weight, input and output nonnegative, targets nonpositive, identity
    # units: each term of each entry has the same sign, so |grad| is the sum of |terms|
    case = build_case([3, 4, 2], "identity", "mse", batch=5, seed=1)
    rng = np.random.default_rng(1)
    params = {k: np.abs(v) for k, v in case.params.items()}
    X = rng.random((5, 3))
    Y = -rng.random((5, 2))
    net = case.net
    exact = naive.gradients(case.sizes, case.hidden, "identity", 0.0, params, X, Y, case.masks)
    work, _ = net.workspace(params, X, Y)
    bound = net.packing.unpack(gradient_magnitude(work), prefix="d")
    for key in exact:
        np.testing.assert_allclose(bound[key], np.abs(exact[key]), rtol=1e-13)


def test_floor_and_vanishing_levels():
    thresholds = fg.Thresholds()
    floor = comparison_floor(1.0)
    assert floor == pytest.approx(ROUNDING_GROWTH * ROUNDING / 1e-4)
    # a rounding-level discrepancy reads at most ACCEPTABLE against the floor
    assert ROUNDING_GROWTH * ROUNDING / floor < thresholds.acceptable * 1.0001
    # a factor-2 mistake in an entry 1e-5 of the scale still reads WRONG
    a = 1e-5
    assert thresholds.classify(abs(2 * a - a) / max(3 * a, floor)) is fg.Verdict.WRONG
    assert vanishes(1e-14, 1.0) and not vanishes(1e-11, 1.0)
    assert vanishes(0.0, 0.0)


@pytest.mark.parametrize("reduction", ["course", "mean", "sum"])
@pytest.mark.parametrize("output", ["identity", "sigmoid", "softmax"])
def test_magnitude_follows_the_networks_convention(reduction, output):
    case = build_case([3, 4, 2], "tanh", "mse", batch=6, seed=4, l2=0.3)
    net = fg.MLP([3, 4, 2], hidden="tanh", output=output, reduction=reduction, l2=0.3)
    rng = np.random.default_rng(4)
    Y = rng.integers(0, 2, 6) if output == "softmax" else rng.random((6, 2))
    grads = net.gradients(case.params, case.X, Y)
    work, _ = net.workspace(case.params, case.X, Y)
    bound = net.packing.unpack(gradient_magnitude(work), prefix="d")
    for key, value in grads.items():
        assert np.all(np.abs(value) <= bound[key] * (1 + 1e-12)), key
    # the data term's factor scales the terms: the sum convention is m (or m k) times the course's
    course = fg.MLP([3, 4, 2], hidden="tanh", output=output, l2=0.0)
    plain = gradient_magnitude(course.workspace(case.params, case.X, Y)[0])
    scaled = gradient_magnitude(net.replace(l2=0.0).workspace(case.params, case.X, Y)[0])
    np.testing.assert_allclose(scaled, plain * net.data_scale(6), rtol=1e-14)


def test_the_scale_of_read_only_inputs_read_in_place_is_the_copys(monkeypatch):
    case = build_case([5, 7, 3], "tanh", "mse", batch=4, seed=2)
    X = case.X.copy()
    X.flags.writeable = False
    monkeypatch.setattr(_passes, "TINY_PASSES", -1)  # the passes read X where it is
    work, _ = case.net.workspace(case.params, X, case.Y, copy_inputs=False)
    assert work.inputs is X
    copied, _ = case.net.workspace(case.params, case.X, case.Y)
    assert gradient_scale(work) == gradient_scale(copied)


@pytest.mark.parametrize("hidden", ["tanh", "sigmoid", ("softplus", 2.0), ("elu", 0.5)])
def test_the_scale_bounds_the_magnitude_through_saturated_units(hidden):
    # one hidden unit driven far into its flat part, its output weight large enough that
    # the first weight's entry, the only one whose terms pass through the unit's slope,
    # is the largest: the compiled scale and the magnitude take that slope each their
    # own way (compiled and numpy), and must agree where 1 - tanh^2 would keep no digit
    x = 1e6
    net = fg.MLP([1, 1, 1], hidden=hidden, output="identity")
    checked = 0
    for z in np.linspace(-30.0, 30.0, 241):
        z = float(z)
        slope = naive.activation_derivative(hidden, np.array([z]))[0]
        if slope == 0.0 or slope > 1e-3:  # past underflow, or not saturated
            continue
        params = {
            "W1": np.array([[z / x]]),
            "b1": np.zeros(1),
            "W2": np.array([[1e-3 / slope]]),
            "b2": np.zeros(1),
        }
        work, _ = net.workspace(params, np.array([[x]]), np.array([[1.0]]))
        magnitude = gradient_magnitude(work)
        assert magnitude.argmax() == 0  # dW1
        largest = magnitude.max()
        for limit in (_magnitude.SMOOTH_TERMS, -1):  # compiled, then numpy's layer walk
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(_magnitude, "SMOOTH_TERMS", limit)
                scale = gradient_scale(work)
            assert scale >= largest * (1.0 - 8 * ROUNDING), (z, scale, largest)
            assert scale <= largest * (1.0 + 8 * ROUNDING), (z, scale, largest)
        checked += 1
    assert checked >= 20
