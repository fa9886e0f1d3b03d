"""The series of all units of a smooth layer at once, against the one-unit series and references."""

from types import SimpleNamespace

import mp_reference
import mpmath
import numba
import numpy as np
import pytest
from compare import SCALE_TOL, rounding_scale
from hypothesis import given
from hypothesis import strategies as st
from networks import case, extended_flat, naive_args
from one_unit import one_unit_series
from threads import numba_threads

import fastgrad as fg
from fastgrad import _layer_series, numerical
from fastgrad.kernels import layer_series as ls
from fastgrad.kernels.jets import ORDER
from fastgrad.kernels.unit_series import JET_REACH, SAFETY, TAIL, tail_fits
from fastgrad.numerical import DEFAULT_EPSILON, Differences

SMOOTH = ("tanh", "sigmoid", "softplus", "elu")
# with parameters: softplus' beta narrows its series' reach, elu's alpha makes a kink
PARAMETRIZED = (("softplus", 3.0), ("softplus", 0.5), ("elu", 0.5), ("elu", 2.0))


def prepared(net, params, X, Y, epsilon):
    work, _ = net.workspace(params, X, Y)
    diff = Differences(work, epsilon)
    diff.prepare()
    return work, diff


def odd_part(series, g):
    """``G(g) - G(-g)`` of a series."""
    return 2.0 * sum(series[n] * g**n for n in range(1, ORDER + 1, 2))


smooth_networks = st.tuples(
    st.lists(st.integers(1, 9), min_size=3, max_size=5),  # a softmax of one output is widened
    st.lists(st.sampled_from(SMOOTH + PARAMETRIZED), min_size=3, max_size=3),
    st.sampled_from(["softmax", "sigmoid", "identity"]),
    st.integers(1, 6),
    st.sampled_from([None, 0.3]),
    st.integers(0, 2**16),
)


def widened(sizes, output):
    """The sizes, with two outputs for a softmax (of one output the loss is constant, its
    series rounding noise that no two computations share)."""
    return sizes[:-1] + [2] if output == "softmax" and sizes[-1] == 1 else sizes


@given(smooth_networks, st.sampled_from([1e-7, 1e-5, 1e-3, 3e-2]))
def test_each_ready_series_is_the_one_unit_series_and_refusals_agree(drawn, epsilon):
    sizes, hidden, output, batch, dropout, seed = drawn
    sizes, hidden = widened(sizes, output), hidden[: len(sizes) - 2]
    net, params, X, Y = case(sizes, hidden, output, batch=batch, seed=seed, dropout=dropout)
    X *= 3.0  # steps up to 3 eps: both orders of the first pass are used
    work, diff = prepared(net, params, X, Y, epsilon)
    t = diff.tables
    # G1 is m dJ/dZ_u[b, i]: where its terms cancel, two float64 computations of it differ by
    # rounding of their size (the backprop's in absolute values, tests/compare.py)
    sizes_, hidden_, output_, l2, masks_ = naive_args(net, X)
    values = SimpleNamespace(
        sizes=sizes_, hidden=hidden_, output=output_, l2=l2, params=params, X=X, Y=Y, masks=masks_
    )
    g1_size = rounding_scale(values).deltas
    compared = asked = 0
    for u in range(1, len(sizes) - 1):
        assert ls.batched(u, work.network.codes)
        units = np.arange(sizes[u], dtype=np.int64)
        _layer_series.layer_series(work.network, diff.head, t, work.loss_code, epsilon, u, units)
        masks = work.network.masks[work.node_off[u] : work.node_off[u + 1]].reshape(batch, -1)
        for b in range(batch):
            r = epsilon * t.reach_in[u - 1, b]
            for i in range(sizes[u]):
                node = work.node_off[u] + b * sizes[u] + i
                state = t.series_ready[node]
                assert state in (ls.READY, ls.REFUSED)
                if masks[b, i] == 0.0:
                    continue  # the kernel never asks: a dropped unit moves nothing
                asked += 1
                single = one_unit_series(work, diff, u, i, b, epsilon)
                assert (state == ls.READY) == (single is not None), (u, i, b)
                if single is None:
                    continue
                ours = t.series[node]
                scale = sum(abs(single[n]) * r**n for n in range(1, ORDER + 1))
                # the terms both keep agree to rounding, and so does what the kernel uses
                # (the odd part sums rounded terms: it gets the terms' tolerance, which a
                # drawn tanh-sigmoid-tanh network missed at a tenth of it by 1.18x)
                rounding = 2.0 * SCALE_TOL * batch * g1_size[u][b, i] * r
                assert abs(ours[1] - single[1]) * r <= 1e-13 * scale + rounding
                for n in (2, 3):
                    assert abs(ours[n] - single[n]) * r**n <= 1e-13 * scale
                odd_gap = abs(odd_part(ours, r) - odd_part(single, r))
                assert odd_gap <= 1e-13 * scale + 2.0 * rounding
                compared += 1
    # not vacuous: at 1e-7 every step (at most some 2e-6 here) is far inside every reach;
    # at 1e-5 a softplus of beta 3 (reach 3.3e-5) rightly refuses every input above 1.1
    assert compared > 0 or epsilon > 1e-7 or asked == 0


@pytest.mark.parametrize("top", [_layer_series.LOW_ORDER, _layer_series.MID_ORDER])
@given(drawn=smooth_networks)
def test_the_last_order_gathered_by_adjoints_is_the_carried_one(top, drawn):
    # at the default step G3 g^3 is some 1e-14 of G1 g: a wrong G3 would not show in the
    # differences, so the coefficients themselves are held to the one-unit series' (every
    # order carried), to rounding of their own size
    with pytest.MonkeyPatch.context() as patch:
        if top == _layer_series.MID_ORDER:
            patch.setattr(_layer_series, "LOW_REACH", 0.0)  # every block starts at order 5
        compare_gathered_orders(top, drawn)


def compare_gathered_orders(top, drawn):
    sizes, hidden, output, batch, dropout, seed = drawn
    sizes, hidden = widened(sizes, output), hidden[: len(sizes) - 2]
    net, params, X, Y = case(sizes, hidden, output, batch=batch, seed=seed, dropout=dropout)
    work, diff = prepared(net, params, X, Y, DEFAULT_EPSILON)
    t = diff.tables
    compared = 0
    for u in range(1, len(sizes) - 1):
        units = np.arange(sizes[u], dtype=np.int64)
        _layer_series.layer_series(
            work.network, diff.head, t, work.loss_code, DEFAULT_EPSILON, u, units
        )
        for b in range(batch):
            for i in range(sizes[u]):
                node = work.node_off[u] + b * sizes[u] + i
                single = one_unit_series(work, diff, u, i, b, DEFAULT_EPSILON)
                if t.series_ready[node] != ls.READY or single is None:
                    continue
                ours = t.series[node]
                # the order of the pass that made it (larger inputs start at 5, retries go on),
                # or 3 where the higher terms vanish: at most the orders the pass had
                made = 3 if not ours[4:].any() else 5 if not ours[6:].any() else ORDER
                for n in range(3, min(made, 5) + 1, 2):
                    scale = abs(single[n]) + 1e-6 * sum(abs(single[m]) for m in range(1, n))
                    assert abs(ours[n] - single[n]) <= 1e-9 * scale, (u, i, b, n)
                compared += 1
    assert compared > 0


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="needs 80-bit long double")
@given(smooth_networks, st.sampled_from([DEFAULT_EPSILON, 1e-5, 1e-3, 1e-2]))
def test_checks_through_smooth_layers_match_an_extended_precision_loop(drawn, epsilon):
    sizes, hidden, output, batch, dropout, seed = drawn
    sizes, hidden = widened(sizes, output), hidden[: len(sizes) - 2]
    net, params, X, Y = case(sizes, hidden, output, batch=batch, seed=seed, dropout=dropout)
    work, diff = prepared(net, params, X, Y, epsilon)
    values, _, _ = diff.compute()
    hidden_nodes = slice(work.node_off[1], work.node_off[len(sizes) - 1])
    # the series serves small steps; the larger ones check the paths that take over
    assert (diff.tables.series_ready[hidden_nodes] == ls.READY).any() or epsilon > 1e-5
    ref = extended_flat(net, params, X, Y, epsilon)[diff.entries]
    assert np.abs(values - ref).max() <= 1e-10 * np.abs(ref).max()


def test_the_tail_test_accepts_a_tail_exactly_at_its_bound_and_refuses_the_next_float():
    # G(g) = a g + b g^5 at r = 1: the tail is b, the whole a + b
    for a in np.linspace(1.0, 2.0, 1001):
        b = TAIL * (a + TAIL * a)
        if b == TAIL * (a + b):
            break
    else:
        pytest.fail("no exact case found")
    series = np.zeros(ORDER + 1)
    series[1] = a
    series[5] = b
    assert tail_fits(series, 1.0, 5)
    series[5] = np.nextafter(b, 2 * b)
    assert not tail_fits(series, 1.0, 5)
    # the order decides which terms are the tail: at order 7, b is not one of them
    assert tail_fits(series, 1.0, 7)


def largest_accepted_move(series, r, top=3):
    """The largest float ``move`` that :func:`odd_tail_fits` accepts, by bisection on floats."""
    low, high = 0.0, ls.CIRCLE  # accepted at a tiny move, refused at q = 1
    assert ls.odd_tail_fits(series, r, np.nextafter(0.0, 1.0), top)
    assert not ls.odd_tail_fits(series, r, high, top)
    while np.nextafter(low, high) < high:
        middle = 0.5 * (low + high)
        middle = middle if low < middle < high else np.nextafter(low, high)
        if ls.odd_tail_fits(series, r, middle, top):
            low = middle
        else:
            high = middle
    return low


def exact_bound_move(series, r, top):
    """The move where the bound of :func:`odd_tail_fits` meets ``TAIL`` of the whole, in mpmath."""
    mpmath.mp.dps = 50
    orders = range(1, top + 1)
    terms = [abs(mpmath.mpf(float(series[n]))) * mpmath.mpf(float(r)) ** n for n in orders]
    whole = sum(terms)

    def excess(q):
        tail = sum(t * q ** (top + 2 - n) for n, t in zip(orders, terms, strict=True))
        return 2 * tail / (1 - q * q) - mpmath.mpf(TAIL) * whole

    q = mpmath.findroot(excess, (mpmath.mpf("1e-12"), mpmath.mpf("0.5")), solver="bisect")
    return q * mpmath.pi / 8


@pytest.mark.parametrize(
    "leading, r",
    [((1.0, 0.0, 0.0), 1.0), ((0.0, 1.0, 0.0), 1.0), ((0.0, 0.0, 1.0), 1.0),
     ((3.0, -2e5, 7e9), 1e-7), ((0.0, 4e-3, -5e5), 3e-6),
     ((2.0, 0.0, -3e4, 0.0, 5e9), 1e-6), ((0.0, 0.0, 0.0, 0.0, 1.0), 1.0)],
)  # fmt: skip
def test_the_odd_tail_bound_accepts_a_move_exactly_at_it_and_refuses_the_next_float(leading, r):
    for top in (3, 5):
        if len(leading) > top and any(leading[top:]):
            continue  # a series of order 5 is not bounded at order 3
        series = np.zeros(ORDER + 1)
        series[1 : len(leading) + 1] = leading
        series[top + 1 :] = 1e300  # terms past top are not the bound's: never read
        if not any(series[1 : top + 1]):
            continue
        move = largest_accepted_move(series, r, top)
        assert ls.odd_tail_fits(series, r, move, top)
        assert not ls.odd_tail_fits(series, r, np.nextafter(move, 1.0), top)
        # the edge is where the stated bound meets TAIL of the whole, to rounding
        exact = exact_bound_move(series, r, top)
        assert abs(move - float(exact)) <= 1e-13 * float(exact), top


def test_the_odd_tail_bound_grows_with_the_leading_order():
    # q^4 when G1 leads, q^3 when G2 does, q^2 when G3 does (r = 1)
    moves = [largest_accepted_move(np.eye(ORDER + 1)[n], 1.0) for n in (1, 2, 3)]
    q = [m / ls.CIRCLE for m in moves]
    assert q[0] > q[1] > q[2]
    assert 2 * q[0] ** 4 == pytest.approx(TAIL, rel=1e-12)
    assert 2 * q[2] ** 2 / (1 - q[2] ** 2) == pytest.approx(TAIL, rel=1e-12)


def test_the_order_three_pass_settles_nearly_every_unit_at_the_default_step(monkeypatch):
    net, params, X, Y = case([6, 12, 10, 8, 3], ["tanh", "sigmoid", "softplus"], batch=6, seed=5)
    passes = []
    carry = _layer_series._carry

    def spy(*args):
        carry(*args)
        state = args[9]
        passes.append((args[8], (state == ls.READY).sum(), state.size))

    monkeypatch.setattr(_layer_series, "_carry", spy)
    work, diff = prepared(net, params, X, Y, DEFAULT_EPSILON)
    diff.compute()
    assert [top for top, _, _ in passes] == [ls.ODD_ORDER] * 3
    assert all(ready == size for _, ready, size in passes)
    assert diff.paths["series"] == diff.entries.size * X.shape[0]


def test_moves_of_order_three_past_the_bound_are_carried_again_with_every_order():
    net, params, X, Y = case([5, 8, 6, 3], ["tanh", "tanh"], batch=4, seed=6)
    work, diff = prepared(net, params, X, Y, DEFAULT_EPSILON)
    t = diff.tables
    units = np.arange(8, dtype=np.int64)
    radius = DEFAULT_EPSILON * t.reach_in[0]
    weights = {2: params["W2"], 3: params["W3"]}
    state = np.full((4, 8), ls.ACTIVE, dtype=np.int8)
    _layer_series._carry(
        work.network, diff.head, work.loss_code, 1, units, 0, radius, weights, ls.ODD_ORDER,
        state, t.series, t.series_ready,
    )  # fmt: skip
    assert (state == ls.READY).all()
    # 300 times the step: moves of a few 1e-5, within JET_REACH, a bound above TAIL; the
    # order-3 pass refuses every unit for its tail alone, and orders 5 and 7 accept them all
    for top, expected in (
        (ls.ODD_ORDER, ls.SHORT), (_layer_series.MID_ORDER, ls.READY), (ORDER, ls.READY),
    ):  # fmt: skip
        state[:] = ls.ACTIVE
        _layer_series._carry(
            work.network, diff.head, work.loss_code, 1, units, 0, 300 * radius, weights,
            top, state, t.series, t.series_ready,
        )  # fmt: skip
        assert (state == expected).all()


def test_the_bound_reads_the_largest_move_of_any_later_layer():
    # later weights 40 times larger: the units after the perturbed one move far more than it
    net, params, X, Y = case([5, 8, 6, 3], ["tanh", "tanh"], batch=4, seed=6)
    params["W2"] = 40.0 * params["W2"]
    work, diff = prepared(net, params, X, Y, DEFAULT_EPSILON)
    t = diff.tables
    units = np.arange(8, dtype=np.int64)
    radius = 20 * DEFAULT_EPSILON * t.reach_in[0]
    outcome = {}
    for top in (ls.ODD_ORDER, ORDER):
        state = np.full((4, 8), ls.ACTIVE, dtype=np.int8)
        _layer_series._carry(
            work.network, diff.head, work.loss_code, 1, units, 0, radius,
            {2: params["W2"], 3: params["W3"]}, top, state, t.series, t.series_ready,
        )  # fmt: skip
        outcome[top] = state
    # the unit's own move (at most 4e-6) alone would pass the bound: the later ones refuse it
    own = np.zeros(ORDER + 1)
    own[1] = 1.0
    assert ls.odd_tail_fits(own, 1.0, radius.max(), 3)
    assert (outcome[ls.ODD_ORDER] == ls.SHORT).any()
    assert (outcome[ORDER] == ls.READY).all()


@pytest.mark.parametrize("carried", [2, 4])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_column_whose_jets_are_not_finite_is_refused(carried, bad):
    # the largest move is kept by comparisons, which a NaN would slip through
    net, params, X, Y = case([3, 4, 5, 2], "tanh", batch=1, seed=2)
    work, _ = prepared(net, params, X, Y, DEFAULT_EPSILON)
    jets = np.full((5, 1, carried, 3), 1e-3)
    jets[2, 0, 0, 1] = bad
    state = np.full((1, 3), ls.ACTIVE, dtype=np.int8)
    moves = np.zeros((1, 3))
    ls.activate_low_jets(
        2, 0, np.array([DEFAULT_EPSILON]), work.network, jets, state, moves, np.ones((1, 5)),
        np.zeros((1, 3)), _layer_series.NO_ADJOINT, _layer_series.NO_JETS,
    )  # fmt: skip
    assert list(state[0]) == [ls.ACTIVE, ls.REFUSED, ls.ACTIVE]


def unit_at(net, params, X, Y, u, i):
    work, diff = prepared(net, params, X, Y, 1.0)
    z = work.pre[work.node_off[u] : work.node_off[u + 1]].reshape(X.shape[0], -1)[:, i]
    return work, z


@pytest.mark.parametrize("hidden", ["tanh", "softplus"])
def test_a_smooth_unit_may_move_exactly_jet_reach_and_no_further(hidden):
    net, params, X, Y = case([3, 4, 4, 2], hidden, batch=1, seed=2)
    work, _ = unit_at(net, params, X, Y, 1, 0)
    units = np.arange(4, dtype=np.int64)
    for radius, expected in ((JET_REACH, ls.ACTIVE), (np.nextafter(JET_REACH, 1.0), ls.REFUSED)):
        state = np.full((1, 4), ls.ACTIVE, dtype=np.int8)
        jets = np.zeros((4, 1, ORDER, 4))
        moves = np.zeros((1, 4))
        ls.start_jets(
            1, units, 0, np.array([radius]), work.network, jets, state, moves,
            _layer_series.NO_ADJOINT, moves,
        )  # fmt: skip
        assert (state == expected).all()


def test_an_elu_unit_may_move_to_just_short_of_its_kink():
    net, params, X, Y = case([3, 4, 4, 2], "elu", batch=1, seed=2)
    work, z = unit_at(net, params, X, Y, 1, 0)
    limit = abs(z[0]) * SAFETY  # the kernel's own product
    units = np.array([0], dtype=np.int64)
    for radius, expected in ((np.nextafter(limit, 0.0), ls.ACTIVE), (limit, ls.REFUSED)):
        state = np.full((1, 1), ls.ACTIVE, dtype=np.int8)
        jets = np.zeros((4, 1, ORDER, 1))
        moves = np.zeros((1, 1))
        ls.start_jets(
            1, units, 0, np.array([radius]), work.network, jets, state, moves,
            _layer_series.NO_ADJOINT, moves,
        )  # fmt: skip
        assert state[0, 0] == expected


def test_a_skipped_column_is_left_alone():
    net, params, X, Y = case([3, 4, 4, 2], "tanh", batch=2, seed=2)
    work, diff = prepared(net, params, X, Y, DEFAULT_EPSILON)
    t = diff.tables
    units = np.arange(4, dtype=np.int64)
    state = np.full((2, 4), ls.ACTIVE, dtype=np.int8)
    state[1, 2] = ls.SKIP
    t.series_ready[:] = 7
    _layer_series._carry(
        work.network, diff.head, work.loss_code, 1, units, 0, DEFAULT_EPSILON * t.reach_in[0],
        {2: params["W2"], 3: params["W3"]}, ls.ODD_ORDER, state, t.series, t.series_ready,
    )  # fmt: skip
    ready = t.series_ready[work.node_off[1] : work.node_off[2]].reshape(2, 4)
    assert ready[1, 2] == 7 and state[1, 2] == ls.SKIP
    assert (np.delete(ready.ravel(), 6) == ls.READY).all()


def test_what_the_low_order_refuses_is_carried_again_with_every_order(monkeypatch):
    net, params, X, Y = case([6, 7, 5, 3], "tanh", batch=4, seed=9)
    reference, _ = prepared(net, params, X, Y, DEFAULT_EPSILON)[1].compute()[:2]
    orders = []
    carry = _layer_series._carry

    def spy(*args):
        carry(*args)
        orders.append(args[8])
        if args[8] < ORDER:  # pretend the lower orders fell short everywhere
            args[9][args[9] == ls.READY] = ls.SHORT

    monkeypatch.setattr(_layer_series, "_carry", spy)
    work, diff = prepared(net, params, X, Y, DEFAULT_EPSILON)
    values, _, _ = diff.compute()
    assert orders == [_layer_series.LOW_ORDER, _layer_series.MID_ORDER, ORDER] * 2
    np.testing.assert_allclose(values, reference, rtol=1e-13, atol=1e-16)
    assert diff.paths["series"] > 0


@pytest.mark.parametrize("floats", [1, 97, 1 << 22])
def test_blocks_of_any_size_give_the_same_values(floats, monkeypatch):
    net, params, X, Y = case([6, 9, 7, 3], ["sigmoid", "tanh"], batch=5, seed=4, dropout=0.2)
    reference = prepared(net, params, X, Y, DEFAULT_EPSILON)[1].compute()[0]
    monkeypatch.setattr(_layer_series, "BLOCK_FLOATS", floats)
    values = prepared(net, params, X, Y, DEFAULT_EPSILON)[1].compute()[0]
    np.testing.assert_allclose(values, reference, rtol=1e-13, atol=1e-17)


def test_a_layer_followed_by_a_piecewise_linear_one_is_not_carried_together():
    net, params, X, Y = case([3, 4, 4, 4, 2], ["tanh", "relu", "tanh"], batch=2, seed=1)
    work, diff = prepared(net, params, X, Y, DEFAULT_EPSILON)
    codes = work.network.codes
    assert [ls.batched(u, codes) for u in range(5)] == [False, False, False, True, False]
    assert diff._batched_layers() == [3]
    with pytest.raises(ValueError, match="layer 1"):
        _layer_series.layer_series(
            work.network, diff.head, diff.tables, work.loss_code, 1e-7, 1, np.arange(4)
        )


def test_the_direct_method_carries_nothing_together():
    net, params, X, Y = case([3, 4, 4, 2], "tanh", batch=2, seed=1)
    work, _ = net.workspace(params, X, Y)
    diff = Differences(work, DEFAULT_EPSILON, method="direct")
    diff.compute()
    assert diff._batched_layers() == []
    assert not diff.tables.series_ready.any()
    assert numerical.finite_diff.DIRECT == diff.method


@pytest.mark.threads
@pytest.mark.parametrize("dropout", [None, 0.3])
def test_identical_results_for_any_thread_count_and_any_chunks(dropout, monkeypatch):
    monkeypatch.setattr(numerical, "SERIAL_WORK", 0)  # the parallel kernel even on small work
    net, params, X, Y = case(
        [20, 30, 30, 5], ["tanh", "softplus"], "softmax", batch=32, seed=3, dropout=dropout
    )
    X[0] *= 1e3  # steps of 1e-4 in the first sample: order 7 and refusals there
    work, _ = net.workspace(params, X, Y)
    runs = []
    for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
        with numba_threads(threads):
            for n_chunks in (1, 3):
                diff = Differences(work, DEFAULT_EPSILON)
                values, _, _ = diff.compute(n_chunks=n_chunks)
                runs.append((threads, values, diff.paths, diff.tables.series_ready.copy()))
    first = runs[0]
    assert (first[3] == ls.READY).any() and (first[3] == ls.REFUSED).any()
    for threads, values, paths, ready in runs:
        np.testing.assert_array_equal(values, first[1], err_msg=f"{threads} threads")
        np.testing.assert_array_equal(ready, first[3])
        assert paths == first[2]


@pytest.mark.threads
def test_task_ranges_of_any_size_give_the_same_values(monkeypatch):
    # the products' last bits depend on the columns carried together; the ranges on the threads
    monkeypatch.setattr(numerical, "SERIAL_WORK", 0)
    hidden = ["sigmoid", "softplus", "sigmoid", "softplus"]
    net, params, X, Y = case([3, 41, 30, 37, 5, 7], hidden, "sigmoid", batch=5, seed=0)
    work, _ = net.workspace(params, X, Y)
    whole, _, _ = Differences(work, DEFAULT_EPSILON).compute()
    for threads in range(1, min(3, numba.config.NUMBA_NUM_THREADS) + 1):
        with numba_threads(threads):
            for n_chunks in (3, 100):
                diff = Differences(work, DEFAULT_EPSILON)
                assert len(diff.chunks(n_chunks)) > 1
                values, _, _ = diff.compute(n_chunks=n_chunks)
                np.testing.assert_array_equal(values, whole, err_msg=f"{threads}, {n_chunks}")


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
@pytest.mark.parametrize("gap", [30.0, 50.0])
def test_confident_predictions_keep_the_differences_exact(hidden, output, gap):
    # the loss moves by p - y with p within e^-gap of y: no series may form p - y
    rng = np.random.default_rng(0)
    net = fg.MLP([2, 3, 3], hidden=hidden, output=output)
    params = {
        "W1": rng.normal(size=(3, 2)),
        "b1": rng.normal(size=3) * 0.1,
        "W2": rng.normal(size=(3, 3)),
        "b2": np.array([gap, -gap, gap]) if output == "sigmoid" else np.array([gap, 0.0, 0.0]),
    }
    X = rng.normal(size=(2, 2))
    Y = np.array([[1.0, 0.0, 1.0 if output == "sigmoid" else 0.0]] * 2)
    work, diff = prepared(net, params, X, Y, DEFAULT_EPSILON)
    values, _, _ = diff.compute()
    assert diff.paths["direct"] == 0
    sizes, names, output, l2, masks = naive_args(net, X)
    ref = mp_reference.centered_differences(
        sizes, names, output, l2, params, X, Y, masks, DEFAULT_EPSILON
    )[diff.entries]
    assert np.abs(values - ref).max() <= 1e-10 * np.abs(ref).max()
