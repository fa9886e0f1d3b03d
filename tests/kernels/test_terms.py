"""The magnitude's kernels against the numpy expressions they replace (bit for bit where exact)."""

import naive
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import cases

from fastgrad.kernels import terms
from fastgrad.kernels.activations import (
    IDENTITY,
    LEAKY_RELU,
    LEAKY_SLOPE,
    RELU,
    SIGMOID,
    SOFTPLUS,
    TANH,
)
from fastgrad.kernels.terms import layer_bound, network_scale, row_reach, times_slope
from fastgrad.thresholds import ROUNDING


def _block(rng, zeros=True):
    shape = tuple(rng.integers(1, 6, size=2))
    block = rng.normal(size=shape) * 10.0 ** rng.integers(-3, 4, size=shape)
    if zeros:
        block[rng.random(shape) < 0.3] = 0.0
    return block


@given(seed=st.integers(0, 2**32 - 1), nan=st.booleans())
def test_row_reach_is_numpy_row_maximum(seed, nan):
    rng = np.random.default_rng(seed)
    block = _block(rng)
    if nan:
        block[rng.integers(block.shape[0]), rng.integers(block.shape[1])] = np.nan
    out = np.empty(block.shape[0])
    row_reach(block, out)
    np.testing.assert_array_equal(out, np.maximum.reduce(np.abs(block), axis=1, initial=0.0))


@given(
    seed=st.integers(0, 2**32 - 1),
    code=st.sampled_from([IDENTITY, RELU, LEAKY_RELU]),
    slope=st.sampled_from([LEAKY_SLOPE, 0.2, -0.5, 3.0]),
)
def test_times_slope_is_numpys_slope_times_mask(seed, code, slope):
    rng = np.random.default_rng(seed)
    pre = _block(rng)
    masks = np.where(rng.random(pre.shape) < 0.3, 0.0, 1.0 / (1.0 - rng.random()))
    delta = np.abs(rng.normal(size=pre.shape))
    out = delta.copy()
    times_slope(code, slope, pre, masks, out)
    expected = {
        IDENTITY: np.ones_like(pre),
        RELU: (pre >= 0).astype(np.float64),  # relu'(0) = 1 in the magnitude
        LEAKY_RELU: np.where(pre > 0, 1.0, abs(slope)),
    }[code]
    # a slope of 0 or 1 is exact; |slope| to one rounding of the product's order
    np.testing.assert_allclose(out, delta * (expected * np.abs(masks)), rtol=4e-16, atol=0)
    np.testing.assert_array_equal(out == 0.0, (expected * masks * delta) == 0.0)


@given(
    seed=st.integers(0, 2**32 - 1),
    nan=st.sampled_from([None, "inputs", "delta"]),
)
def test_layer_bound_is_numpys_largest_sums(seed, nan):
    rng = np.random.default_rng(seed)
    a_in = _block(rng)
    batch = a_in.shape[0]
    delta = np.abs(rng.normal(size=(batch, int(rng.integers(1, 6))))) * 10.0 ** rng.integers(-3, 4)
    delta[rng.random(delta.shape) < 0.3] = 0.0
    if nan == "inputs":
        a_in[rng.integers(batch), rng.integers(a_in.shape[1])] = np.nan
    elif nan == "delta":
        delta[rng.integers(batch), rng.integers(delta.shape[1])] = np.nan
    reach = np.empty(batch)
    weights, biases = layer_bound(a_in, delta, reach)
    expected_reach = np.maximum.reduce(np.abs(a_in), axis=1, initial=0.0)
    np.testing.assert_array_equal(reach, expected_reach)
    expected = (
        np.maximum.reduce(expected_reach @ delta, initial=0.0),
        np.maximum.reduce(delta.sum(axis=0), initial=0.0),
    )
    for ours, theirs in zip((weights, biases), expected, strict=True):
        if np.isnan(theirs):
            assert np.isnan(ours)
        else:  # sums of nonnegative terms, in another order: a few units in the last place
            assert ours >= 0.0
            assert abs(ours - theirs) <= 4 * batch * ROUNDING * theirs


def naive_scale(case):
    """The gradient's scale from the naive forward pass: the magnitude's terms per layer."""
    sizes, hidden, output, l2, params, X, Y, masks = case.naive_args
    Z, A = naive.forward(sizes, hidden, params, X, masks)
    m = X.shape[0]
    p = naive.output_function(output, Z[-1])
    if output == "softmax":
        delta = p * np.abs(Y).sum(axis=1, keepdims=True) + np.abs(Y)
    else:
        delta = np.abs(p) + np.abs(Y)
    best = 0.0
    for layer in range(len(sizes) - 1, 0, -1):
        W = params[f"W{layer}"]
        reach = np.abs(A[layer - 1]).max(axis=1)
        weights = (reach @ delta).max() + l2 * np.abs(W).max()
        best = max(best, weights / m, delta.sum(axis=0).max() / m)
        if layer > 1:
            z = Z[layer - 2]
            slope = np.abs(naive.activation_derivative(hidden[layer - 2], z))
            if naive.split(hidden[layer - 2])[0] == "relu":
                slope[z == 0.0] = 1.0  # the magnitude takes relu's slope at its kink as 1
            delta = (delta @ np.abs(W)) * slope * np.abs(masks[layer - 2])
    return best


@settings(max_examples=80, deadline=None)
@given(cases())
def test_network_scale_is_the_naive_bound(case):
    work, _ = case.net.workspace(case.params, case.X_given, case.Y_given, case.layout)
    ours = network_scale(
        work.network, work.inputs, work.probabilities(), work.targets, work.loss_code, 1.0, work.l2
    )
    expected = naive_scale(case)
    # sums of nonnegative terms in another order, derivatives by other formulas
    assert abs(ours - expected) <= 16 * max(case.sizes) * ROUNDING * expected


@pytest.mark.parametrize(("code", "param"), [(TANH, 0.0), (SIGMOID, 0.0), (SOFTPLUS, 3.0)])
def test_smooth_slopes_far_out_are_finite_in_python_too(code, param):
    # the kernel's Python function (what NUMBA_DISABLE_JIT=1 runs): math.cosh(800) and
    # math.exp(800) raise OverflowError where the compiled code gives inf
    slope = terms._slope.py_func
    for z in (-800.0, 800.0, -1e300, 1e300):
        expected = 1.0 if code == SOFTPLUS and z > 0 else 0.0
        assert slope(code, param, z) == expected
    assert slope(code, param, 0.0) == {TANH: 1.0, SIGMOID: 0.25, SOFTPLUS: 0.5}[code]
