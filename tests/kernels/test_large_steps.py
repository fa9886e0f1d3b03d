"""Large steps through saturated units and confident logits, against 50-digit references."""

import mp_reference
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import ENTRIES, OUTPUTS, naive_args, random_targets

import fastgrad as fg
from fastgrad.numerical import Differences


def kernel_values(net, params, X, Y, epsilon, method):
    work, _ = net.workspace(params, X, Y)
    diff = Differences(work, epsilon, method=method)
    values, _, _ = diff.compute()
    flat = np.empty(work.theta.size)
    flat[diff.entries] = values
    return flat


def reference(net, params, X, Y, epsilon):
    sizes, hidden, output, l2, masks = naive_args(net, X)
    if Y.ndim == 1:
        Y = np.eye(sizes[-1])[Y]
    return mp_reference.centered_differences(
        sizes, hidden, output, l2, params, X, Y, masks, epsilon
    )


def assert_exact(ours, ref):
    """Within 1e-8 relative, or 1e-12 of the largest entry."""
    gap = np.abs(ours - ref)
    assert np.all(np.isfinite(ours)), ours
    assert np.all(gap <= 1e-8 * np.abs(ref) + 1e-12 * np.abs(ref).max()), (ours, ref)


@pytest.mark.parametrize("method", ["exact", "direct"])
@pytest.mark.parametrize("hidden", ["tanh", "sigmoid", "softplus", "elu"])
def test_a_saturated_unit_pushed_across_by_a_large_step(hidden, method):
    net = fg.MLP([1, 1, 1], hidden=hidden, output="identity")
    params = {
        "W1": np.array([[-0.3]]),
        "b1": np.zeros(1),
        "W2": np.array([[1.0]]),
        "b2": np.zeros(1),
    }
    X, Y = np.array([[100.0]]), np.array([[0.0]])
    ours = kernel_values(net, params, X, Y, 0.5, method)
    assert_exact(ours, reference(net, params, X, Y, 0.5))


@pytest.mark.parametrize("method", ["exact", "direct"])
@pytest.mark.parametrize("epsilon", [0.01, 0.0102, 0.5])
def test_a_confident_logit_moved_by_tens(epsilon, method):
    net = fg.MLP([1, 2], output="softmax")
    params = {"W1": np.array([[0.0], [100 / 3690]]), "b1": np.zeros(2)}
    X, y = np.array([[3690.0]]), np.array([0])
    ours = kernel_values(net, params, X, y, epsilon, method)
    ref = reference(net, params, X, y, epsilon)
    assert_exact(ours, ref)


@pytest.mark.parametrize("method", ["exact", "direct"])
@pytest.mark.parametrize("y", [0.0, 1.0, 0.3])
def test_a_confident_sigmoid_output_moved_by_tens(y, method):
    net = fg.MLP([1, 2], output="sigmoid")
    params = {"W1": np.array([[0.05], [-0.04]]), "b1": np.array([1.0, -2.0])}
    X, Y = np.array([[900.0]]), np.array([[y, 1.0 - y]])
    ours = kernel_values(net, params, X, Y, 0.05, method)
    assert_exact(ours, reference(net, params, X, Y, 0.05))


@settings(max_examples=12, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 3), min_size=2, max_size=4),
    hidden=st.sampled_from(ENTRIES),
    output=st.sampled_from(OUTPUTS),
    weight_std=st.sampled_from([1.0, 30.0]),
    input_scale=st.sampled_from([1.0, 1e3]),
    epsilon=st.sampled_from([1e-3, 0.1, 0.5]),
    method=st.sampled_from(["exact", "direct"]),
    seed=st.integers(0, 10_000),
)
def test_random_networks_at_large_weights_inputs_and_steps(
    sizes, hidden, output, weight_std, input_scale, epsilon, method, seed
):
    rng = np.random.default_rng(seed)
    net = fg.MLP(sizes, hidden=hidden, output=output)
    params = {}
    for u in range(1, len(sizes)):
        params[f"W{u}"] = rng.normal(size=(sizes[u], sizes[u - 1])) * weight_std
        params[f"b{u}"] = rng.normal(size=sizes[u])
    X = rng.normal(size=(2, sizes[0])) * input_scale
    Y = random_targets(output, 2, sizes[-1], rng)
    ours = kernel_values(net, params, X, Y, epsilon, method)
    assert_exact(ours, reference(net, params, X, Y, epsilon))


@pytest.mark.parametrize("method", ["exact", "direct"])
@pytest.mark.parametrize("y", [0.0, 0.2])
@pytest.mark.parametrize("epsilon", [1e-3, 0.5])
def test_a_logit_past_exp_range_moved_by_more_than_it(epsilon, y, method):
    # z of 1e6 and more moved by eps x = 740 (between 708 and 745): s exp(-740) of
    # log(c + s exp(-dz)) is subnormal (6 bits) and c = 0 cannot make up for it
    net = fg.MLP([1, 1], output="sigmoid")
    params = {"W1": np.array([[1000.1]]), "b1": np.array([0.3])}
    X, Y = np.array([[740.0 / epsilon]]), np.array([[y]])
    ours = kernel_values(net, params, X, Y, epsilon, method)
    assert_exact(ours, reference(net, params, X, Y, epsilon))


@pytest.mark.parametrize("method", ["exact", "direct"])
@pytest.mark.parametrize("hidden", [None, "relu", ("leaky_relu", -0.3), "identity", "tanh"])
def test_a_confident_right_softmax_keeps_its_tiny_gradient(hidden, method):
    # the target's p is 1 - 9e-27: every entry is about 1e-26, and a series whose first
    # term is p.u - y.u (1 u_1 - 1 u_1 in float64) would get none of it
    X, Y = np.array([[1.0], [-0.5]]), np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    if hidden is None:
        net = fg.MLP([1, 3], output="softmax")
        params = {"W1": np.array([[0.0], [60.0], [-3.0]]), "b1": np.array([0.0, 0.0, 0.1])}
        X = X[:1]
        Y = Y[:1]
    else:
        # a hidden layer as wide as the outputs, which the layer-wide setup takes too
        net = fg.MLP([1, 3, 3], hidden=[hidden], output="softmax")
        params = {
            "W1": np.array([[1.0], [0.5], [-0.25]]),
            "b1": np.array([0.0, 2.0, 1.0]),
            "W2": np.array([[0.0, 1.0, 0.5], [0.5, 40.0, 0.0], [-3.0, 1.0, 0.25]]),
            "b2": np.array([0.0, 0.0, 0.1]),
        }
    ours = kernel_values(net, params, X, Y, 1e-3, method)
    ref = reference(net, params, X, Y, 1e-3)
    assert np.abs(ref).max() < 1e-10
    assert_exact(ours, ref)
