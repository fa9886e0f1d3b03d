"""The series of a layer followed by piecewise-linear layers, set up at once, against references."""

import naive
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import case, extended_flat, naive_args
from one_unit import one_unit_series
from threads import numba_threads

import fastgrad as fg
from fastgrad import _line_setup, numerical
from fastgrad.kernels import layer_series as ls
from fastgrad.kernels import line_setup, tables
from fastgrad.kernels.jets import ORDER
from fastgrad.kernels.losses import CROSS_ENTROPY
from fastgrad.kernels.unit_series import SAFETY
from fastgrad.numerical import DEFAULT_EPSILON, Differences

LINEAR = ("relu", "identity", ("leaky_relu", 0.2), ("leaky_relu", -0.3), "leaky_relu")
EXTENDED = np.finfo(np.longdouble).eps < 1e-18


def prepared(net, params, X, Y, epsilon):
    work, _ = net.workspace(params, X, Y)
    diff = Differences(work, epsilon)
    diff.prepare()
    return work, diff


def set_up(work, diff, epsilon):
    """Set up the series of the logits and of every layer followed by piecewise-linear layers.

    Whatever their width: a check leaves out the layers narrower than the outputs.
    """
    setup = _line_setup.LineSetup(work.network, 1)
    t = diff.tables
    if t.series.shape[0] == 0:
        diff.tables = t = t._replace(series=np.zeros((t.series_ready.size, ORDER + 1)))
    n_layers = work.sizes.size - 1
    for u in range(1, n_layers + 1):
        if u == n_layers or line_setup.is_line_layer(u, work.network.codes):
            units = np.arange(work.sizes[u], dtype=np.int64)
            _line_setup.line_series(
                work.network, setup, diff.head, t, work.loss_code, epsilon, u, units
            )
    return setup


def relative(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def slopes_of(net, params, X):
    """``Z_k`` and ``D_k = phi'(Z_k) M_k`` by node layer, and the masks, from the naive pass.

    At a kink the left slope, as the kernels take it.
    """
    sizes, hidden, _, _, masks = naive_args(net, X)
    pre, _ = naive.forward(sizes, hidden, params, X, masks)
    Z = dict(enumerate(pre, start=1))  # by node layer
    out = {}
    for k in range(1, len(sizes) - 1):
        name, param = (hidden[k - 1], None) if isinstance(hidden[k - 1], str) else hidden[k - 1]
        z = Z[k]
        if name == "relu":
            d = (z > 0).astype(float)
        elif name == "leaky_relu":
            d = np.where(z > 0, 1.0, 0.01 if param is None else param)
        elif name == "identity":
            d = np.ones_like(z)
        else:
            d = np.full_like(z, np.nan)  # not used: the suffix is piecewise linear
        out[k] = d * masks[k - 1]
    return Z, out, masks


def changes(params, slopes, u, i, b, n_layers):
    """``d_k``: how ``Z_k[b]`` moves per unit change of ``A_u[b, i]``, k = u+1 .. L, in numpy."""
    d = params[f"W{u + 1}"][:, i].copy()
    out = {u + 1: d}
    for k in range(u + 2, n_layers + 1):
        d = params[f"W{k}"] @ (slopes[k - 1][b] * d)
        out[k] = d
    return out


linear_networks = st.tuples(
    st.lists(st.integers(1, 7), min_size=3, max_size=6),
    st.lists(st.sampled_from(LINEAR), min_size=4, max_size=4),
    st.sampled_from(["softmax", "sigmoid", "identity"]),
    st.integers(1, 5),
    st.sampled_from([None, 0.3]),
    st.integers(0, 2**16),
)


def built(drawn, first=None):
    sizes, hidden, output, batch, dropout, seed = drawn
    if output == "softmax" and sizes[-1] == 1:
        sizes = sizes[:-1] + [2]
    hidden = hidden[: len(sizes) - 2]
    if first is not None:
        hidden = [first] + hidden[1:]
    return sizes, case(sizes, hidden, output, batch=batch, seed=seed, dropout=dropout)


# -- the pieces against numpy ---------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(linear_networks)
def test_slopes_jacobians_and_bounds_match_numpy(drawn):
    sizes, (net, params, X, Y) = built(drawn)
    X[0, : max(1, sizes[0] // 2)] = 0.0  # zeros below: units on their kinks at small biases
    work, _ = net.workspace(params, X, Y)
    Z, slopes, masks = slopes_of(net, params, X)
    n_layers = len(sizes) - 1
    # the bounds divide by the pre-activations the kernels read: the pass's own, whose
    # products may round otherwise than numpy's in the last place
    Z = {k: work.block(work.pre, k) for k in range(1, n_layers + 1)}
    setup = _line_setup.LineSetup(work.network, 1)
    for k in range(2, n_layers):
        np.testing.assert_array_equal(setup.slopes[k], slopes[k])
    wt = np.empty_like(work.theta)
    tables.transpose_weights(work.theta, work.w_off, work.sizes, wt)
    for u in range(1, n_layers):
        top, nearest, c, later = setup.bounds(u)
        for b in range(X.shape[0]):
            # the Jacobian of the logits, one column per unit, from per-unit carries in numpy
            for i in range(sizes[u]):
                d = changes(params, slopes, u, i, b, n_layers)
                np.testing.assert_allclose(
                    setup.jacobians[u][b, :, i], d[n_layers], rtol=1e-12, atol=1e-14
                )
                np.testing.assert_array_equal(
                    setup.directions(u)[b, i], setup.jacobians[u][b, :, i]
                )
            # the next layer: exactly, and bounded in one product
            if u + 1 < n_layers:
                name = net.hidden_entries[u]
                kinked = name not in ("identity", ("leaky_relu", 1.0))
                live = masks[u][b] != 0.0
                W = np.abs(params[f"W{u + 1}"])
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(W > 0, W / np.abs(Z[u + 1][b])[:, None], 0.0)
                want = ratio[live].max(axis=0, initial=0.0) if kinked else np.zeros(sizes[u])
                got = [line_setup.next_reach(u, i, b, work.network, wt) for i in range(sizes[u])]
                np.testing.assert_allclose(got, want, rtol=1e-15)
                np.testing.assert_array_equal(top, W.max(axis=0))
                near = 1.0 / np.abs(Z[u + 1][b][live]).min() if kinked and live.any() else 0.0
                np.testing.assert_allclose(nearest[b], near, rtol=1e-15)
                # up to the rounding of a quotient against a product by a reciprocal
                assert np.all(np.asarray(got) <= top * nearest[b] * (1.0 + 4.0 * 2.0**-53))
            # the later layers: c, the row norms and H by their definitions
            if u + 2 < n_layers:
                W1 = params[f"W{u + 1}"]
                D = np.abs(slopes[u + 1][b])
                np.testing.assert_allclose(c[b], np.sqrt(D @ W1**2), rtol=1e-13)
                bound, factor = np.inf, 1.0
                for k in range(u + 2, n_layers):
                    rows = np.sqrt(params[f"W{k}"] ** 2 @ np.abs(slopes[k - 1][b]))
                    np.testing.assert_allclose(setup.rows[k][b], rows, rtol=1e-13)
                    live = (masks[k - 1][b] != 0.0) & (rows > 0.0)
                    name = net.hidden_entries[k - 1]
                    if name not in ("identity", ("leaky_relu", 1.0)) and live.any():
                        h = np.min(np.abs(Z[k][b][live]) / rows[live])
                        bound = min(bound, h / factor if factor > 0 else np.inf)
                    factor *= np.sqrt(np.abs(slopes[k][b]) @ rows**2)
                np.testing.assert_allclose(later[b], bound, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(linear_networks, st.sampled_from([1e-7, 1e-5, 1e-3, 0.1]))
def test_a_certified_unit_moves_no_later_unit_across_its_kink(drawn, epsilon):
    sizes, (net, params, X, Y) = built(drawn)
    X *= 3.0
    work, diff = prepared(net, params, X, Y, epsilon)
    Z, slopes, masks = slopes_of(net, params, X)
    n_layers = len(sizes) - 1
    set_up(work, diff, epsilon)
    ready = diff.tables.series_ready
    for u in range(1, n_layers):
        state = ready[work.node_off[u] : work.node_off[u + 1]].reshape(-1, sizes[u])
        for b, i in zip(*np.nonzero(state == ls.READY), strict=True):
            # the largest move of the unit's activation over the row's inputs, in numpy
            r = epsilon * max(1.0, np.abs(naive.forward(sizes, net.hidden_entries, params, X,
                                                        masks)[1][u - 1][b]).max())  # fmt: skip
            step = r * abs(slopes[u][b, i])
            for k, d in changes(params, slopes, u, i, b, n_layers).items():
                if k == n_layers:
                    break
                name = net.hidden_entries[k - 1]
                if name in ("identity", ("leaky_relu", 1.0)):
                    continue
                live = masks[k - 1][b] != 0.0
                assert np.all(step * np.abs(d[live]) < np.abs(Z[k][b][live])), (u, i, b, k)


@settings(max_examples=40, deadline=None)
@given(
    linear_networks,
    st.sampled_from([None, "tanh", "sigmoid", ("elu", 0.5)]),
    st.sampled_from([1e-7, 1e-5, 1e-3]),
)
def test_each_ready_series_is_the_one_unit_series(drawn, first, epsilon):
    sizes, (net, params, X, Y) = built(drawn, first)
    work, diff = prepared(net, params, X, Y, epsilon)
    n_layers = len(sizes) - 1
    set_up(work, diff, epsilon)
    t = diff.tables
    for u in range(1, n_layers + 1):
        if u < n_layers and not line_setup.is_line_layer(u, work.network.codes):
            continue
        for b in range(X.shape[0]):
            for i in range(sizes[u]):
                node = work.node_off[u] + b * sizes[u] + i
                state = t.series_ready[node]
                if state == 0:
                    continue  # left to the one-unit path
                ours = one_unit_series(work, diff, u, i, b, epsilon)
                # refused for the unit's own kink or reach, the logits' reach or the tail,
                # which the one-unit path tests alike
                assert (ours is None) == (state == ls.REFUSED), (u, i, b, state)
                if ours is None:
                    continue
                scale = np.abs(ours).max() + 1e-300
                np.testing.assert_allclose(t.series[node], ours, rtol=0, atol=1e-12 * scale)


# -- the bounds at their edges --------------------------------------------------------------------


EDGES = {"next": (2, 0.75), "cs": (3, 1.5625), "deeper": (4, 3.125)}
"""Where a unit is put at a bound: its node layer, and how far it moves per unit of the step."""


def edge_case(at, margin):
    """A relu network, 1-1-2-1-1-1, and a step that puts a later unit ``margin`` times a bound away.

    The sample is ``x = 1``; the entries ``W1[0, 0]`` and ``b1[0]`` move the unit of layer 1 by
    the step. Its change reaches layer 2 as ``(0.75, 1)`` per unit (``c = 1.25``), layer 3 as
    ``0.75 * 0.75 + 1 = 1.5625 = R_3 c`` and layer 4 as ``2 * 1.5625 = 3.125 = R_4 F_3 c``:
    every bound is tight. ``at`` names the unit put at ``Z = 2^-20`` (exactly: every sum of the
    forward pass is exact), unit 0 of layer 2 (the next layer's exact bound), layer 3 (one
    Cauchy-Schwarz step) or layer 4 (two), and the step is picked so that the unit's move is
    ``2^-20 safety margin``. So below 1 the bound certifies, between 1 and ``1 / safety`` it
    does not although nothing crosses, above ``1 / safety`` the unit crosses its kink.
    """
    net = fg.MLP([1, 1, 2, 1, 1, 1], hidden="relu", output="sigmoid")
    tiny = 2.0**-20
    params = {
        "W1": np.array([[1.0]]),
        "b1": np.array([0.0]),
        "W2": np.array([[0.75], [1.0]]),
        "b2": np.array([1.0, 1.0]),
        "W3": np.array([[0.75, 1.0]]),
        "b3": np.array([0.0]),
        "W4": np.array([[2.0]]),
        "b4": np.array([0.0]),
        "W5": np.array([[1.0]]),
        "b5": np.array([0.0]),
    }
    # without the edge: Z1 = 1, Z2 = (1.75, 2), Z3 = 3.3125, Z4 = 6.625
    if at == "next":
        params["b2"] = np.array([tiny - 0.75, 1.0])
    elif at == "cs":
        params["b3"] = np.array([tiny - 3.3125])
        params["b4"] = np.array([1.0])  # layer 4 then sits far from its kink
    else:
        params["b4"] = np.array([tiny - 6.625])
    safety = line_setup.bound_safety(5, 2)
    epsilon = tiny * safety * margin / EDGES[at][1]
    return net, params, np.array([[1.0]]), np.array([[0.3]]), epsilon


MARGINS = {"certified": 1.0 - 1e-6, "undecided": 1.0 + 1e-10, "crossing": 1.0 + 1e-6}


@pytest.mark.parametrize("at", list(EDGES))
@pytest.mark.parametrize("where", list(MARGINS))
def test_the_bounds_decide_exactly_at_their_edges(at, where):
    net, params, X, Y, epsilon = edge_case(at, MARGINS[where])
    work, diff = prepared(net, params, X, Y, epsilon)
    assert work.pre[work.node_off[EDGES[at][0]]] == 2.0**-20  # built exactly
    assert diff.line_setup is None  # a network this small is carried one unit at a time
    _line_setup.line_series(
        work.network, _line_setup.LineSetup(work.network, 1), diff.head, diff.tables,
        work.loss_code, epsilon, 1, np.array([0], dtype=np.int64),
    )  # fmt: skip
    state = diff.tables.series_ready[work.node_off[1]]
    # inside the bound the setup certifies; outside it leaves the unit to the exact path
    assert state == (ls.READY if where == "certified" else 0)
    values, kinks, _ = diff.compute()
    moved = [list(diff.entries).index(net.packing.offsets[name]) for name in ("W1", "b1")]
    # ... which finds the kink where the unit crosses, and none where it only comes close
    assert list(kinks[moved]) == ([1, 1] if where == "crossing" else [0, 0])
    if where == "crossing":
        assert np.all(diff.kink_lo[moved] < values[moved])
        assert np.all(values[moved] < diff.kink_hi[moved])
    if EXTENDED:
        ref = extended_flat(net, params, X, Y, epsilon)[diff.entries]
        assert relative(values, ref) < 1e-10


# -- whole checks ---------------------------------------------------------------------------------


@pytest.mark.skipif(not EXTENDED, reason="needs 80-bit long double")
@settings(max_examples=25, deadline=None)
@given(linear_networks, st.sampled_from([1e-7, 1e-5]), st.sampled_from([0.0, 0.4]))
def test_checks_through_piecewise_linear_layers_match_an_extended_precision_loop(
    drawn, epsilon, l2
):
    sizes, (net, params, X, Y) = built(drawn)
    diff = Differences(net.workspace(params, X, Y)[0], epsilon)
    ours = diff.compute()[0]
    assert relative(ours, extended_flat(net, params, X, Y, epsilon)[diff.entries]) < 1e-10


def test_an_ordinary_relu_check_sets_its_series_up_a_layer_at_a_time():
    net, params, X, Y = case([30, 32, 16, 10], "relu", "softmax", batch=16, seed=2)
    work, diff = prepared(net, params, X, Y, DEFAULT_EPSILON)
    assert _line_setup.carry_work([30, 32, 16, 10], 16, [1, 2]) > _line_setup.SETUP_WORK
    assert diff.line_layers == [1, 2, 3]
    values, _, _ = diff.compute()
    ready = diff.tables.series_ready[work.node_off[1] : work.node_off[4]]
    # the kernel never marks a series ready: these come from the setup of the layer
    assert np.mean(ready == ls.READY) > 0.9
    assert diff.paths["series"] > 0.9 * sum(diff.paths.values())
    report = fg.check(net, params, X, Y)
    assert report.details["paths"]["series"] > 0.9 * sum(report.details["paths"].values())
    if EXTENDED:
        ref = extended_flat(net, params, X, Y, DEFAULT_EPSILON)[diff.entries]
        assert relative(values, ref) < 1e-10


def test_a_layer_followed_by_a_smooth_one_or_narrower_than_the_outputs_is_not_set_up():
    net, params, X, Y = case([3, 4, 64, 6, 8], ["relu", "tanh", "relu"], batch=16, seed=1)
    work, diff = prepared(net, params, X, Y, DEFAULT_EPSILON)
    codes = work.network.codes
    assert [line_setup.is_line_layer(u, codes) for u in range(5)] == [
        False, False, True, True, False,
    ]  # fmt: skip
    assert _line_setup.carry_work([3, 4, 64, 6, 8], 16, [2]) > _line_setup.SETUP_WORK
    assert diff.line_layers == [2, 4]  # layer 3 has fewer units than the 8 outputs
    direct = Differences(work, DEFAULT_EPSILON, method="direct")
    direct.prepare()
    assert direct.line_layers == [] and direct.line_setup is None
    with pytest.raises(ValueError, match="layer 1"):
        _line_setup.line_series(
            work.network, diff.line_setup, diff.head, diff.tables, work.loss_code,
            DEFAULT_EPSILON, 1, np.arange(4, dtype=np.int64),
        )  # fmt: skip


def test_the_carry_work_counts_one_column_then_whole_matrices_per_unit_and_sample():
    # layer 1: 5 units x (3 + 3 * 2) in each of 4 samples; layer 2: 3 units x 2
    assert _line_setup.carry_work([7, 5, 3, 2], 4, [1]) == 4 * 5 * 9
    assert _line_setup.carry_work([7, 5, 3, 2], 4, [1, 2]) == 4 * (5 * 9 + 3 * 2)
    assert _line_setup.carry_work([7, 5, 3, 2], 4, []) == 0


@pytest.mark.parametrize("batch", [3, 2000])
def test_a_small_network_carries_its_hidden_units_one_at_a_time_and_a_larger_batch_sets_up(batch):
    # the README's course network: 5 x (3 + 3 x 1) + 3 x 1 = 33 multiply-adds per sample
    net, params, X, Y = case([4, 5, 3, 1], "relu", "sigmoid", batch=batch, seed=4)
    work, diff = prepared(net, params, X, Y, DEFAULT_EPSILON)
    set_up = _line_setup.carry_work([4, 5, 3, 1], batch, [1, 2]) >= _line_setup.SETUP_WORK
    assert set_up == (batch == 2000)
    assert diff.line_layers == ([1, 2, 3] if set_up else [3])
    assert (diff.line_setup is None) == (not set_up)
    values, _, _ = diff.compute()
    hidden = diff.tables.series_ready[work.node_off[1] : work.node_off[3]]
    if set_up:
        assert np.mean(hidden == ls.READY) > 0.9
    else:  # the kernel never marks a series ready: nothing was set up before it ran
        assert not np.any(hidden == ls.READY)
    assert diff.paths["series"] > 0.9 * sum(diff.paths.values()), diff.paths
    # the one-unit carry and the setup compute the same exact centered differences
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_line_setup, "SETUP_WORK", 10**12 if set_up else 0)
        patch.setattr(numerical, "_full_line_layers", numerical._full_line_layers.__wrapped__)
        other = Differences(work, DEFAULT_EPSILON)
        others = other.compute()[0]
    assert other.line_layers == ([3] if set_up else [1, 2, 3])
    np.testing.assert_allclose(others, values, rtol=1e-12, atol=0)
    if EXTENDED:
        ref = extended_flat(net, params, X, Y, DEFAULT_EPSILON)[diff.entries]
        assert relative(values, ref) < 1e-10


@pytest.mark.threads
@pytest.mark.parametrize("dropout", [None, 0.3])
def test_identical_results_for_any_thread_count(dropout, monkeypatch):
    monkeypatch.setattr(numerical, "SERIAL_WORK", 0)
    net, params, X, Y = case([20, 30, 24, 5], ["relu", "leaky_relu"], batch=16, seed=3,
                             dropout=dropout)  # fmt: skip
    X[:2] = 0.0  # kinks at the blank rows
    runs = []
    for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
        with numba_threads(threads):
            for epsilon in (DEFAULT_EPSILON, 1e-3):
                work, diff = prepared(net, params, X, Y, epsilon)
                values, kinks, _ = diff.compute(n_chunks=3)
                runs.append((epsilon, values, kinks, diff))
    for epsilon, values, kinks, diff in runs:
        first = next(r for r in runs if r[0] == epsilon)
        np.testing.assert_array_equal(values, first[1])
        np.testing.assert_array_equal(kinks, first[2])
        np.testing.assert_array_equal(diff.tables.series_ready, first[3].tables.series_ready)
        assert diff.paths == first[3].paths


def test_safety_shrinks_with_the_rounding_the_bounds_can_carry():
    assert line_setup.bound_safety(4, 2048) < SAFETY
    assert SAFETY - line_setup.bound_safety(4, 2048) < 1e-11
    assert line_setup.bound_safety(2, 10) > line_setup.bound_safety(20, 10**6)


@pytest.mark.parametrize("target", [1, 0])
def test_the_logits_line_series_of_a_confident_softmax_keeps_the_small_probabilities(target):
    # p_1 = 1 - 9e-27: the series' terms are about 1e-26 when the target is the likeliest
    # output, which p.w - y.w and moments about p.w, formed in float64, lose to rounding
    import mpmath

    z = np.array([0.0, 60.0, -3.0])
    prob = np.exp(z - z.max())
    prob /= prob.sum()
    y = np.eye(3)[target]
    w = np.array([1.0, 0.25, -2.0])
    out = np.zeros(ORDER + 1)
    line_setup.linear_loss_series(CROSS_ENTROPY, z, prob, y, w, np.zeros((3, ORDER + 1)), out)
    with mpmath.workdps(60):
        zs, ws = [mpmath.mpf(v) for v in z], [mpmath.mpf(v) for v in w]

        def loss(g):
            moved = [a + g * b for a, b in zip(zs, ws, strict=True)]
            return mpmath.log(mpmath.fsum(mpmath.exp(v) for v in moved)) - moved[target]

        ref = [float(c) for c in mpmath.taylor(loss, 0, ORDER)]
    for n in range(1, ORDER + 1):
        assert abs(out[n] - ref[n]) <= 1e-12 * abs(ref[n]), (n, out[n], ref[n])
