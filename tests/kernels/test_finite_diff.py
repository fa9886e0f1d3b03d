"""The centered-difference kernel against a naive loop of full forward passes."""

import naive
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import HIDDEN, OUTPUTS, case, naive_args

from fastgrad.numerical import Differences


def fast_gradient(net, params, X, Y, epsilon, entries=None):
    work, _ = net.workspace(params, X, Y)
    differences = Differences(work, epsilon, entries)
    values, kinks, done = differences.compute()
    assert done == differences.entries.size
    flat = np.full(work.theta.size, np.nan)
    flat[differences.entries] = values
    counts = np.zeros(work.theta.size, dtype=np.int64)
    counts[differences.entries] = kinks
    return flat, counts, work


def naive_flat(net, params, X, Y, epsilon):
    sizes, hidden, output, l2, masks = naive_args(net, X)
    grads = naive.numerical_gradient(sizes, hidden, output, l2, params, X, Y, masks, epsilon)
    return np.concatenate([grads["d" + name].ravel() for name in net.packing.names])


def relative(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_matches_naive_loop_for_every_activation_and_loss(hidden, output):
    net, params, X, Y = case(
        [5, 6, 4, 3], hidden, output, batch=6, seed=hash((hidden, output)) % 1000
    )
    # eps = 1e-4 keeps the naive loop's own rounding (u |J| / eps) near 1e-12
    ours, _, _ = fast_gradient(net, params, X, Y, 1e-4)
    assert relative(ours, naive_flat(net, params, X, Y, 1e-4)) < 1e-9


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    hidden=st.lists(st.sampled_from(HIDDEN), min_size=3, max_size=3),
    output=st.sampled_from(OUTPUTS),
    batch=st.integers(1, 5),
    l2=st.sampled_from([0.0, 0.7]),
    dropout=st.sampled_from([None, 0.3]),
    seed=st.integers(0, 10_000),
)
def test_matches_naive_loop_on_random_networks(sizes, hidden, output, batch, l2, dropout, seed):
    hidden = hidden[: len(sizes) - 2]
    net, params, X, Y = case(
        sizes,
        hidden,
        output,
        batch=batch,
        seed=seed,
        l2=l2,
        dropout=dropout if len(sizes) > 2 else None,
    )
    ours, _, _ = fast_gradient(net, params, X, Y, 1e-4)
    ref = naive_flat(net, params, X, Y, 1e-4)
    assert np.linalg.norm(ours - ref) <= 1e-9 * np.linalg.norm(ref) + 1e-12


@pytest.mark.parametrize("hidden", ["relu", "leaky_relu", "tanh"])
def test_large_steps_take_the_exact_path_and_still_match(hidden):
    # eps = 0.05 moves units across kinks and beyond the series' radius
    net, params, X, Y = case([4, 7, 5, 3], hidden, "softmax", batch=5, seed=3, scale=2.0)
    ours, kinks, _ = fast_gradient(net, params, X, Y, 0.05)
    assert relative(ours, naive_flat(net, params, X, Y, 0.05)) < 1e-11
    if hidden != "tanh":
        assert kinks.sum() > 0


def test_default_step_matches_naive_loop_to_its_rounding():
    net, params, X, Y = case([6, 5, 4], "relu", "softmax", batch=8, seed=11)
    ours, _, _ = fast_gradient(net, params, X, Y, 1e-6)
    assert relative(ours, naive_flat(net, params, X, Y, 1e-6)) < 1e-8


def test_sampled_entries_equal_the_same_entries_of_a_full_run():
    net, params, X, Y = case([8, 6, 5, 3], "relu", "softmax", batch=9, seed=5)
    full, _, _ = fast_gradient(net, params, X, Y, 1e-6)
    entries = np.random.default_rng(0).choice(full.size, 40, replace=False)
    part, _, _ = fast_gradient(net, params, X, Y, 1e-6, entries)
    np.testing.assert_array_equal(part[entries], full[entries])
    assert np.isnan(np.delete(part, entries)).all()


@pytest.mark.parametrize("hidden", ["relu", "tanh"])
def test_identical_results_for_any_number_of_threads(hidden):
    net, params, X, Y = case([30, 20, 12, 4], hidden, "softmax", batch=10, seed=2)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one, kinks_one, _ = fast_gradient(net, params, X, Y, 1e-6)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many, kinks_many, _ = fast_gradient(net, params, X, Y, 1e-6)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, many)
    np.testing.assert_array_equal(kinks_one, kinks_many)


def test_chunked_run_equals_single_run():
    net, params, X, Y = case([12, 9, 7, 3], "relu", "sigmoid", batch=6, seed=8)
    work, _ = net.workspace(params, X, Y)
    whole, _, _ = Differences(work, 1e-6).compute(n_chunks=1)
    seen = []
    chunked, _, done = Differences(work, 1e-6).compute(
        n_chunks=7, progress=lambda d, t: seen.append((d, t))
    )
    np.testing.assert_array_equal(whole, chunked)
    assert len(seen) > 1 and seen[-1] == (done, done) and seen == sorted(seen)


def test_zero_inputs_and_dead_units_give_exact_zeros():
    net, params, X, Y = case([6, 5, 3], "relu", "softmax", batch=4, seed=1)
    X[:, 2] = 0.0
    params["b1"][1] = -100.0  # unit 1 of layer 1 is dead for every sample
    flat, _, _ = fast_gradient(net, params, X, Y, 1e-6)
    grads = net.packing.unpack(flat)
    assert np.all(grads["W1"][:, 2] == 0.0)
    assert np.all(grads["W1"][1] == 0.0) and grads["b1"][1] == 0.0
    assert np.all(grads["W2"][:, 1] == 0.0)


def exact_zero_case():
    """A 1-hidden-layer relu network with some pre-activations exactly 0."""
    rng = np.random.default_rng(4)
    X = rng.integers(-3, 4, size=(6, 5)).astype(float)
    W1 = rng.integers(-2, 3, size=(4, 5)).astype(float)
    b1 = np.array([0.5, 0.0, -0.5, 0.25])
    W1[1] = 0.0
    W1[1, 0] = 1.0
    X[::2, 0] = 0.0  # unit 1 has pre-activation exactly 0 on even samples
    params = {"W1": W1, "b1": b1, "W2": rng.normal(size=(3, 4)), "b2": np.zeros(3)}
    y = rng.integers(0, 3, 6)
    return params, X, y


def test_kinks_at_exact_zero_are_counted_exactly():
    params, X, y = exact_zero_case()
    import fastgrad as fg

    net = fg.MLP([5, 4, 3], hidden="relu")
    eps = 1e-6
    _, kinks, work = fast_gradient(net, params, X, y, eps)
    z1 = work.block(work.pre, 1)
    counts = net.packing.unpack(kinks)
    expected_w = np.zeros((4, 5), dtype=np.int64)
    expected_b = np.zeros(4, dtype=np.int64)
    for b in range(X.shape[0]):
        for i in range(4):
            for sign in (1.0, -1.0):
                expected_b[i] += (z1[b, i] + sign * eps > 0) != (z1[b, i] > 0)
                for j in range(5):
                    step = sign * eps * X[b, j]
                    expected_w[i, j] += (z1[b, i] + step > 0) != (z1[b, i] > 0)
    assert expected_w.sum() > 0
    np.testing.assert_array_equal(counts["W1"], expected_w)
    np.testing.assert_array_equal(counts["b1"], expected_b)
    assert counts["W2"].sum() == 0 and counts["b2"].sum() == 0


def test_kinks_in_later_layers_are_found():
    import fastgrad as fg

    rng = np.random.default_rng(9)
    X = rng.normal(size=(5, 3))
    params = {
        "W1": rng.normal(size=(4, 3)),
        "b1": np.full(4, 10.0),  # layer 1 active everywhere
        "W2": rng.normal(size=(3, 4)),
        "b2": np.zeros(3),
        "W3": rng.normal(size=(2, 3)),
        "b3": np.zeros(2),
    }
    net = fg.MLP([3, 4, 3, 2], hidden="relu")
    z1 = X @ params["W1"].T + params["b1"]
    a1 = np.maximum(z1, 0)
    # make unit 0 of layer 2 exactly zero on sample 2
    params["b2"][0] = -(a1[2] @ params["W2"][0])
    work, _ = net.workspace(params, X, np.array([0, 1, 0, 1, 1]))
    z2 = work.block(work.pre, 2)
    assert z2[2, 0] == 0.0
    eps = 1e-6
    _, kinks, _ = fast_gradient(net, params, X, np.array([0, 1, 0, 1, 1]), eps)
    counts = net.packing.unpack(kinks)
    # W1[i, j] moves z2[2, 0] by eps * X[2, j] * W2[0, i]: one of the two signs crosses
    expected = (X[2][None, :] != 0) & (params["W2"][0][:, None] != 0)
    np.testing.assert_array_equal(counts["W1"] > 0, expected)
    assert counts["b2"][0] == 1 and counts["W2"][0].sum() > 0


def test_units_near_a_kink_in_later_layers_are_carried_exactly():
    import fastgrad as fg

    rng = np.random.default_rng(12)
    X = rng.normal(size=(5, 3))
    params = {
        "W1": rng.normal(size=(4, 3)),
        "b1": np.full(4, 10.0),
        "W2": rng.normal(size=(3, 4)),
        "b2": np.zeros(3),
        "W3": rng.normal(size=(2, 3)),
        "b3": np.zeros(2),
    }
    y = np.array([0, 1, 0, 1, 1])
    net = fg.MLP([3, 4, 3, 2], hidden="relu")
    a1 = X @ params["W1"].T + params["b1"]
    params["b2"][0] = 3e-7 - a1[2] @ params["W2"][0]  # z2[2, 0] just above its kink
    eps = 1e-6
    ours, kinks, work = fast_gradient(net, params, X, y, eps)
    z2 = work.block(work.pre, 2)[2, 0]
    assert 0 < z2 < 1e-6
    move = eps * np.abs(X[2][None, :] * params["W2"][0][:, None])  # how far W1[i, j] moves it
    expected = move > z2
    assert 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(net.packing.unpack(kinks)["W1"] > 0, expected)
    assert relative(ours, naive_flat(net, params, X, naive.one_hot(y, 2), eps)) < 1e-8


def extended_flat(net, params, X, Y, epsilon):
    sizes, hidden, output, l2, masks = naive_args(net, X)
    grads = naive.numerical_gradient(
        sizes, hidden, output, l2, params, X, Y, masks, epsilon, dtype=np.longdouble
    )
    return np.concatenate([grads["d" + name].ravel() for name in net.packing.names])


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="needs 80-bit long double")
@pytest.mark.parametrize("epsilon", [1e-7, 1e-5])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_small_steps_match_an_extended_precision_loop(hidden, output, epsilon):
    # small steps take the series path; the float64 loop would be off by ~u |J| / eps here
    net, params, X, Y = case(
        [5, 6, 4, 3],
        [hidden, "tanh" if hidden == "relu" else hidden],
        output,
        batch=5,
        seed=len(hidden) + len(output),
        l2=0.3,
        dropout=0.25,
    )
    ours, _, _ = fast_gradient(net, params, X, Y, epsilon)
    assert relative(ours, extended_flat(net, params, X, Y, epsilon)) < 1e-10


def test_sparse_inputs_skip_zeros_exactly():
    net, params, X, Y = case([40, 9, 6, 3], "relu", "softmax", batch=6, seed=21)
    X[np.random.default_rng(0).random(X.shape) < 0.8] = 0.0
    ours, _, _ = fast_gradient(net, params, X, Y, 1e-7)
    grads = net.packing.unpack(ours)
    assert np.all(grads["W1"][:, ~X.any(axis=0)] == 0.0)
    if np.finfo(np.longdouble).eps < 1e-18:
        assert relative(ours, extended_flat(net, params, X, Y, 1e-7)) < 1e-10
    else:
        assert relative(ours, naive_flat(net, params, X, Y, 1e-5)) < 1e-6
