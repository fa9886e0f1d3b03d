"""The centered-difference kernel against a naive loop of full forward passes."""

import naive
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import (
    ENTRIES,
    HIDDEN,
    OUTPUTS,
    PARAMETRIZED,
    blank_row_at_zero_biases,
    case,
    extended_flat,
    naive_args,
    naive_flat,
)
from threads import numba_threads

import fastgrad as fg
from fastgrad import numerical
from fastgrad.kernels import finite_diff
from fastgrad.numerical import DEFAULT_EPSILON, Differences


@st.composite
def hidden_entries(draw):
    """A name, or a parametrized entry with a drawn parameter (1 included: no kink)."""
    name = draw(st.sampled_from(HIDDEN))
    ranges = {"leaky_relu": (-1.0, 1.5), "elu": (0.0, 3.0), "softplus": (0.2, 8.0)}
    if name not in ranges or draw(st.booleans()):
        return name
    low, high = ranges[name]
    return (name, draw(st.one_of(st.just(1.0), st.floats(low, high))))


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


def relative(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", ENTRIES)
def test_matches_naive_loop_for_every_activation_and_loss(hidden, output):
    # a seed of its own per pair, the same in every process (hash() of a str is not)
    seed = 10 * ENTRIES.index(hidden) + OUTPUTS.index(output)
    net, params, X, Y = case([5, 6, 4, 3], hidden, output, batch=6, seed=seed)
    # eps = 1e-4 keeps the naive loop's own rounding (u |J| / eps) near 1e-12
    ours, _, _ = fast_gradient(net, params, X, Y, 1e-4)
    assert relative(ours, naive_flat(net, params, X, Y, 1e-4)) < 1e-9


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    hidden=st.lists(hidden_entries(), min_size=3, max_size=3),
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


@pytest.mark.parametrize(
    "hidden", ["relu", "leaky_relu", "tanh", ("leaky_relu", 0.2), ("elu", 0.5), ("elu", 1.0)]
)
def test_large_steps_take_the_exact_path_and_still_match(hidden):
    # eps = 0.05 moves units across kinks and beyond the series' radius
    net, params, X, Y = case([4, 7, 5, 3], hidden, "softmax", batch=5, seed=3, scale=2.0)
    X[0] = 0.0  # a blank sample: every unit of layer 1 sits on its kink at zero biases
    params["b1"][:] = 0.0
    ours, kinks, _ = fast_gradient(net, params, X, Y, 0.05)
    assert relative(ours, naive_flat(net, params, X, Y, 0.05)) < 1e-11
    # elu is kinked unless alpha is 1
    assert (kinks.sum() > 0) == (hidden not in ("tanh", ("elu", 1.0)))


def test_default_step_matches_naive_loop_to_its_rounding():
    net, params, X, Y = case([6, 5, 4], "relu", "softmax", batch=8, seed=11)
    ours, _, _ = fast_gradient(net, params, X, Y, 1e-6)
    assert relative(ours, naive_flat(net, params, X, Y, 1e-6)) < 1e-8


@pytest.mark.threads
def test_sampled_entries_equal_the_same_entries_of_a_full_run():
    net, params, X, Y = case([8, 6, 5, 3], "relu", "softmax", batch=9, seed=5)
    full, _, _ = fast_gradient(net, params, X, Y, 1e-6)
    entries = np.random.default_rng(0).choice(full.size, 40, replace=False)
    part, _, _ = fast_gradient(net, params, X, Y, 1e-6, entries)
    np.testing.assert_array_equal(part[entries], full[entries])
    assert np.isnan(np.delete(part, entries)).all()


def thread_counts():
    """1, 2 and the most this process allows (``NUMBA_NUM_THREADS``), as far as it allows."""
    most = numba.config.NUMBA_NUM_THREADS
    return sorted({count for count in (1, 2, most) if count <= most})


@pytest.mark.threads
def test_chunked_run_equals_single_run():
    net, params, X, Y = case([12, 9, 7, 3], "relu", "sigmoid", batch=6, seed=8)
    work, _ = net.workspace(params, X, Y)
    whole, _, _ = Differences(work, 1e-6).compute(n_chunks=1)
    reports = {}
    for threads in thread_counts():
        with numba_threads(threads):
            seen = reports[threads] = []
            differences = Differences(work, 1e-6)
            chunked, _, done = differences.compute(
                n_chunks=7, progress=lambda d, t, seen=seen: seen.append((d, t))
            )
        # 19 tasks x 6 samples run serially, whole or in chunks: the same compiled code
        np.testing.assert_array_equal(whole, chunked)
        # chunks keep at least four tasks per thread, so their number depends on the threads
        assert len(seen) == max(1, min(7, differences.n_tasks // (4 * threads)))
        assert seen[-1] == (done, done) and seen == sorted(seen)
    assert len(reports[1]) == 4  # 19 tasks // 4: the run did split


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
    # make unit 0 of layer 2 exactly zero on sample 2: its bias cancels the product the
    # passes compute (BLAS's or a tiny network's loop; the bias is added after it)
    work, _ = net.workspace(params, X, np.array([0, 1, 0, 1, 1]))
    params["b2"][0] = -work.block(work.pre, 2)[2, 0]
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


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="needs 80-bit long double")
@pytest.mark.parametrize("epsilon", [1e-7, 1e-5])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", ENTRIES)
def test_small_steps_match_an_extended_precision_loop(hidden, output, epsilon):
    # small steps take the series path; the float64 loop would be off by ~u |J| / eps here
    net, params, X, Y = case(
        [5, 6, 4, 3],
        [hidden, "tanh" if hidden == "relu" else hidden],
        output,
        batch=5,
        seed=ENTRIES.index(hidden) + len(output),
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


# -- paths ----------------------------------------------------------------------------------------


def differences(net, params, X, Y, epsilon, method="exact"):
    work, _ = net.workspace(params, X, Y)
    diff = Differences(work, epsilon, method=method)
    values, kinks, _ = diff.compute()
    return diff, values, kinks


@pytest.mark.parametrize("hidden", ["relu", "tanh", *PARAMETRIZED])
def test_the_series_path_carries_most_entries_at_the_default_step(hidden):
    net, params, X, Y = case([20, 12, 8, 4], hidden, "softmax", batch=8, seed=4)
    diff, values, _ = differences(net, params, X, Y, DEFAULT_EPSILON)
    total = sum(diff.paths.values())
    assert diff.paths["series"] > 0.9 * total, diff.paths
    if np.finfo(np.longdouble).eps < 1e-18:
        ref = extended_flat(net, params, X, Y, DEFAULT_EPSILON)
        assert relative(values, ref[diff.entries]) < 1e-10


@pytest.mark.parametrize("hidden", ["relu", ("leaky_relu", 0.2), ("leaky_relu", -0.3)])
def test_the_line_path_serves_relu_layers_when_the_logits_move_too_far_for_the_series(hidden):
    net, params, X, Y = case([6, 8, 5, 3], hidden, "softmax", batch=6, seed=2)
    diff, values, _ = differences(net, params, X, Y, 1e-3)
    assert diff.paths["line"] > 0.5 * sum(diff.paths.values()), diff.paths
    ref = naive_flat(net, params, X, Y, 1e-3)
    assert relative(values, ref[diff.entries]) < 1e-10


def test_the_direct_path_serves_smooth_layers_at_large_steps():
    net, params, X, Y = case([6, 8, 5, 3], "tanh", "softmax", batch=6, seed=2)
    diff, values, _ = differences(net, params, X, Y, 0.05)
    assert diff.paths["direct"] > 0.5 * sum(diff.paths.values()), diff.paths
    ref = naive_flat(net, params, X, Y, 0.05)
    assert relative(values, ref[diff.entries]) < 1e-11


@pytest.mark.parametrize("epsilon", [DEFAULT_EPSILON, 1e-4, 0.05])
@pytest.mark.parametrize(
    "hidden",
    [
        ["relu", "tanh"],
        ["tanh", "leaky_relu"],
        [("elu", 0.5), ("leaky_relu", 0.2)],
        [("softplus", 3.0), ("elu", 2.0)],
    ],
)
def test_the_direct_method_takes_no_series_and_agrees_with_the_exact_one(hidden, epsilon):
    net, params, X, Y = case([5, 6, 4, 3], hidden, "softmax", batch=5, seed=6, l2=0.3)
    exact, values, kinks = differences(net, params, X, Y, epsilon)
    direct, direct_values, direct_kinks = differences(net, params, X, Y, epsilon, "direct")
    assert direct.paths["series"] == direct.paths["line"] == 0 < direct.paths["direct"]
    assert relative(direct_values, values) < 1e-12
    np.testing.assert_array_equal(direct_kinks, kinks)


def test_an_unknown_method_is_refused():
    net, params, X, Y = case([3, 2], "relu", "softmax", batch=2)
    with pytest.raises(ValueError, match="method must be one of"):
        fg.numerical_gradient(net, params, X, Y, method="series")
    direct = fg.numerical_gradient(net, params, X, Y, method="direct")
    exact = fg.numerical_gradient(net, params, X, Y)
    np.testing.assert_allclose(direct["dW1"], exact["dW1"], rtol=1e-12)


# -- kinks ----------------------------------------------------------------------------------------


def kink_reference(net, params, X, Y, epsilon):
    """Kink counts, interval half-widths and unverifiable flags from a loop of full passes."""
    sizes, hidden, output, _, masks = naive_args(net, X)
    plus, minus, up, down = naive.one_sided(
        sizes, hidden, output, params, X, Y, masks, epsilon, dtype=np.longdouble
    )
    crossing = (up + down) > 0
    kinks = (up > 0).sum(axis=1) + (down > 0).sum(axis=1)
    width = np.where(crossing, np.abs(plus + minus), 0.0).sum(axis=1) / (2 * epsilon * X.shape[0])
    return kinks, width.astype(np.float64), ((up + down) > 1).any(axis=1)


def blank_rows(X, rng, count):
    X[rng.choice(X.shape[0], size=min(count, X.shape[0]), replace=False)] = 0.0
    return X


def intervals(diff, values):
    """Return each entry's kink interval in the order of the values (the value where none)."""
    lo, hi = values.copy(), values.copy()
    if diff.kink_index is not None:
        lo[diff.kink_index], hi[diff.kink_index] = diff.kink_lo, diff.kink_hi
    return lo, hi


@settings(max_examples=15, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=3, max_size=4),
    hidden=st.sampled_from(["relu", "leaky_relu", "mixed", "parametrized"]),
    output=st.sampled_from(OUTPUTS),
    epsilon=st.sampled_from([1e-3, 0.05, 0.4]),
    blank=st.integers(0, 2),
    zero_bias=st.booleans(),
    dropout=st.sampled_from([None, 0.4]),
    seed=st.integers(0, 10_000),
)
def test_kink_flags_intervals_and_unverifiable_entries_match_a_naive_loop(
    sizes, hidden, output, epsilon, blank, zero_bias, dropout, seed
):
    names = {
        "mixed": ["relu", "tanh", "leaky_relu"],
        # elu with alpha other than 1 is kinked, like leaky relu with its own slope
        "parametrized": [("elu", 0.5), ("leaky_relu", 0.2), ("elu", 2.0)],
    }.get(hidden, [hidden] * 3)
    net, params, X, Y = case(
        sizes, names[: len(sizes) - 2], output, batch=5, seed=seed, dropout=dropout
    )
    X = blank_rows(X, np.random.default_rng(seed), blank)
    if zero_bias:
        for name in params:
            if name.startswith("b"):
                params[name][:] = 0.0
    diff, values, kinks = differences(net, params, X, Y, epsilon)
    ref_kinks, ref_width, ref_unverifiable = kink_reference(net, params, X, Y, epsilon)
    order = diff.entries
    np.testing.assert_array_equal(kinks, ref_kinks[order])
    np.testing.assert_array_equal(diff.unverifiable, ref_unverifiable[order])
    scale = max(np.abs(values).max(), 1e-300)
    # without a crossing the intervals are the values themselves and are not stored
    assert (diff.kink_lo is None) == (diff.kink_hi is None) == (not kinks.any())
    assert diff.kink_index is None or np.array_equal(diff.kink_index, np.flatnonzero(kinks))
    lo, hi = intervals(diff, values)
    np.testing.assert_allclose(hi - values, ref_width[order], rtol=1e-9, atol=1e-11 * scale)
    np.testing.assert_allclose(values - lo, ref_width[order], rtol=1e-9, atol=1e-11 * scale)
    assert np.all(lo[kinks == 0] == values[kinks == 0])
    assert np.all(hi[kinks == 0] == values[kinks == 0])


@pytest.mark.parametrize("blank_first", [False, True])
def test_output_layer_entries_are_never_kinks_in_any_sample_order(blank_first):
    net = fg.MLP([4, 4, 3])
    params = net.init("he_normal", seed=0)
    X = np.random.default_rng(0).normal(size=(5, 4)) * 1e3
    X[-1] = 0.0
    y = np.array([0, 1, 2, 0, 1])
    if blank_first:
        X, y = X[::-1].copy(), y[::-1].copy()
    work, _ = net.workspace(params, X, y)
    diff = Differences(work, DEFAULT_EPSILON)
    _, kinks, _ = diff.compute()
    counts = net.packing.unpack(kinks[np.argsort(diff.entries)])
    assert counts["W2"].sum() == 0 and counts["b2"].sum() == 0
    assert counts["b1"].sum() > 0  # the blank sample sits on every kink of layer 1


def test_a_blank_row_at_zero_biases_bounds_every_convention_or_says_it_cannot():
    net, params, X, y = blank_row_at_zero_biases()
    work, _ = net.workspace(params, X, y)
    diff = Differences(work, DEFAULT_EPSILON)
    values, kinks, _ = diff.compute()
    order = np.argsort(diff.entries)
    unpack = net.packing.unpack
    lo, hi = (unpack(bound[order]) for bound in intervals(diff, values))
    unverifiable = unpack(diff.unverifiable[order].astype(float))
    # b1 moves a unit of layer 1 across its kink and then units of layer 2: unverifiable
    assert unverifiable["b1"].all()
    # b2 crosses one kink only: the interval holds backprop's value for relu'(0) = 0 and = 1
    assert not unverifiable["b2"].any() and (unpack(kinks[order])["b2"] > 0).all()
    sizes, hidden, output, l2, masks = naive_args(net, X)
    Y = naive.one_hot(y, 4)
    left = naive.gradients(sizes, hidden, output, l2, params, X, Y, masks)["db2"]
    original = naive.activation_derivative
    try:
        naive.activation_derivative = lambda name, z: (
            (z >= 0).astype(float) if name == "relu" else original(name, z)
        )
        right = naive.gradients(sizes, hidden, output, l2, params, X, Y, masks)["db2"]
    finally:
        naive.activation_derivative = original
    assert not np.allclose(left, right)
    # one convention sits on an end of the interval: allow the step's truncation error
    slack = 1e-8 * np.abs(left).max()
    for grad in (left, right):
        assert np.all(lo["b2"] - slack <= grad) and np.all(grad <= hi["b2"] + slack)
    # a sign flip lands outside
    assert np.all((-left < lo["b2"] - slack) | (-left > hi["b2"] + slack))


# -- dropout and threads -------------------------------------------------------------------------


def dropped_smooth_unit_case():
    """A relu layer followed by a tanh unit that dropout drops in one sample of two."""
    for seed in range(100):
        net = fg.MLP(
            [1, 1, 1, 1],
            hidden=["relu", "tanh"],
            output="identity",
            dropout=[0.0, 0.5],
            dropout_seed=seed,
        )
        if sorted(net.dropout_masks(2)[1][:, 0]) == [0.0, 2.0]:
            break
    params = {name: np.ones((1, 1)) if name[0] == "W" else np.zeros(1) for name in net.param_names}
    params["b1"][:] = 0.5
    return net, params, np.ones((2, 1)), np.array([[0.0], [100.0]])


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="needs 80-bit long double")
@pytest.mark.parametrize("epsilon", [1e-4, DEFAULT_EPSILON])
def test_a_dropped_smooth_unit_leaves_no_stale_series_coefficients(epsilon):
    net, params, X, Y = dropped_smooth_unit_case()
    _, values, _ = differences(net, params, X, Y, 0.3)  # fills the lane's scratch first
    diff, values, _ = differences(net, params, X, Y, epsilon)
    assert diff.paths["series"] > 0
    ref = extended_flat(net, params, X, Y, epsilon)[diff.entries]
    assert np.abs(values - ref).max() < 1e-10 * np.abs(ref).max()


@pytest.mark.threads
@pytest.mark.parametrize("method", ["exact", "direct"])
@pytest.mark.parametrize("dropout", [None, 0.3])
@pytest.mark.parametrize("hidden", [["relu", "tanh"], ["tanh", "relu"]])
def test_identical_results_for_any_thread_count_with_the_parallel_kernel(
    hidden, dropout, method, monkeypatch
):
    monkeypatch.setattr(numerical, "SERIAL_WORK", 0)  # the parallel kernel even on small work
    net, params, X, Y = case([20, 30, 30, 5], hidden, "softmax", batch=32, seed=3, dropout=dropout)
    X = blank_rows(X, np.random.default_rng(0), 2)  # kinks at the blank rows
    runs = []
    for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
        with numba_threads(threads):
            for epsilon in (DEFAULT_EPSILON, 1e-3):
                diff, values, kinks = differences(net, params, X, Y, epsilon, method)
                runs.append((threads, epsilon, values, kinks, diff))
    for threads, epsilon, values, kinks, diff in runs:
        first = next(r for r in runs if r[1] == epsilon)
        np.testing.assert_array_equal(values, first[2], err_msg=f"{threads} threads")
        np.testing.assert_array_equal(kinks, first[3])
        np.testing.assert_array_equal(diff.kink_index, first[4].kink_index)
        np.testing.assert_array_equal(diff.kink_lo, first[4].kink_lo)
        np.testing.assert_array_equal(diff.unverifiable, first[4].unverifiable)
        assert diff.paths == first[4].paths


@pytest.mark.threads
def test_one_compiled_kernel_serves_runs_on_the_calling_thread_and_on_every_thread():
    # the same compiled function runs a small piece of work on the calling thread and a
    # large one in lanes on the threads, so the two agree bit for bit (two compilations
    # of the same loop need not: fast-math may round them differently)
    net, params, X, Y = case([20, 30, 30, 5], ["relu", "tanh"], "softmax", batch=32, seed=6)
    work, _ = net.workspace(params, X, Y)
    runs = []
    for parallel in (False, True):
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            with numba_threads(threads):
                diff = Differences(work, DEFAULT_EPSILON)
                diff.parallel = parallel
                values, kinks, _ = diff.compute()
                runs.append((values, kinks))
                signatures = len(finite_diff.centered_differences.signatures)
                if len(runs) == 1:
                    first_signatures = signatures
                assert signatures == first_signatures
    for values, kinks in runs[1:]:
        np.testing.assert_array_equal(values, runs[0][0])
        np.testing.assert_array_equal(kinks, runs[0][1])


@pytest.mark.parametrize("dropout", [None, 0.3])
def test_results_do_not_depend_on_the_order_of_the_samples(dropout):
    net, params, X, Y = case([8, 9, 7, 3], ["relu", "tanh"], "softmax", batch=12, seed=5)
    net = fg.MLP(net.sizes, hidden=["relu", "tanh"], dropout=dropout)
    masks = net.dropout_masks(12)
    X = blank_rows(X, np.random.default_rng(1), 2)
    order = np.random.default_rng(2).permutation(12)
    _, values, kinks = differences(net, params, X, Y, 1e-4)
    # the same samples in another order, with their dropout masks moved along
    net_moved = fg.MLP(net.sizes, hidden=["relu", "tanh"], dropout=dropout)
    net_moved.dropout_masks = lambda batch: [mask[order] for mask in masks]
    _, moved, moved_kinks = differences(net_moved, params, X[order], Y[order], 1e-4)
    np.testing.assert_allclose(moved, values, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(moved_kinks, kinks)
