"""A check's working arrays, kept on the network from one check to the next."""

import copy
import pickle
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import build_case, cases, random_params

import fastgrad as fg
from fastgrad import _progress, _scratch
from fastgrad._scratch import Scratch

# a large step crosses kinks (and writes the kink widths); its advice is not under test here
pytestmark = pytest.mark.filterwarnings("ignore::fastgrad.StepWarning")

REPORT_ARRAYS = ("_numerical", "_analytic", "_checked", "_kink_counts", "_errors", "_judged")


def test_a_scratch_hands_out_the_same_array_while_name_shape_and_type_stay():
    scratch = Scratch(limit=1 << 20)
    first = scratch.empty("a", (3, 4))
    assert scratch.empty("a", (3, 4)) is first
    assert scratch.nbytes == first.nbytes
    assert scratch.empty("b", 5, dtype=np.int8) is scratch.empty("b", 5, dtype=np.int8)
    assert scratch.empty("b", np.int64(5), dtype=np.int8) is scratch.empty("b", (5,), np.int8)
    assert scratch.nbytes == first.nbytes + 5
    # another shape or type replaces it
    wider = scratch.empty("a", (3, 5))
    assert wider is not first and wider.shape == (3, 5)
    assert scratch.empty("a", (3, 5), dtype=np.int64).dtype == np.int64
    assert scratch.nbytes == 3 * 5 * 8 + 5
    # zeros are zeros, the reused array too
    zeros = scratch.zeros("z", 7)
    zeros[:] = 3.0
    again = scratch.zeros("z", 7)
    assert again is zeros and not again.any()


def test_a_scratch_that_would_pass_its_limit_lets_go_of_everything():
    scratch = Scratch(limit=100)
    small = scratch.empty("small", 10)  # 80 bytes: kept
    assert scratch.empty("small", 10) is small and scratch.nbytes == 80
    # 80 more would pass 100: allocated, and from now on nothing is kept
    assert not scratch.zeros("large", 10).any()
    assert scratch.overflowed and scratch.nbytes == 0
    assert scratch.empty("small", 10) is not small
    assert scratch.empty("tiny", 1) is not scratch.empty("tiny", 1)
    nothing = Scratch()
    assert nothing.empty("a", 3) is not nothing.empty("a", 3)
    assert nothing.nbytes == 0


def assert_same_reports(ours, fresh):
    for name in REPORT_ARRAYS:
        np.testing.assert_array_equal(getattr(ours, name), getattr(fresh, name), err_msg=name)
    for name in ("_kink_index", "_kink_lo", "_kink_hi"):
        mine, theirs = getattr(ours, name), getattr(fresh, name)
        assert (mine is None) == (theirs is None), name
        if mine is not None:
            np.testing.assert_array_equal(mine, theirs, err_msg=name)
    assert ours.difference == fresh.difference
    assert ours.verdict == fresh.verdict
    assert ours.details.get("paths") == fresh.details.get("paths")


@settings(max_examples=40, deadline=None)
@given(
    case=cases(),
    mode=st.sampled_from(["full", "sample"]),
    method=st.sampled_from(["exact", "direct"]),
    epsilon=st.sampled_from([1e-6, 3e-2]),
    seed=st.integers(0, 2**16),
    threads=st.sampled_from([(1, 2), (2, 1), (2, 2)]),
)
def test_a_check_on_the_last_checks_arrays_is_a_fresh_networks_check_to_the_bit(
    case, mode, method, epsilon, seed, threads
):
    # the first check leaves other values in every kept array (a large step crosses kinks),
    # on as many threads as the second check or not
    first, second = (min(t, numba.config.NUMBA_NUM_THREADS) for t in threads)
    other = random_params(case.sizes, np.random.default_rng(seed), "flat")
    options = {"mode": mode, "method": method, "epsilon": epsilon, "layout": case.layout}
    if mode == "sample":
        options["k"] = 2
    args = (case.params, case.X_given, case.Y_given)
    fg.check(case.net, other, *args[1:], threads=first, **options)
    kept = list(case.net._scratches)
    ours = fg.check(case.net, *args, threads=second, **options)
    fresh = fg.check(case.net.replace(), *args, **options)
    assert_same_reports(ours, fresh)
    # the second check took the first one's scratch and gave it back
    assert len(kept) == 1 and case.net._scratches == kept
    assert kept[0].nbytes > 0


@settings(max_examples=20, deadline=None)
@given(case=cases(), seed=st.integers(0, 2**16))
def test_a_numerical_gradient_on_the_last_runs_arrays_is_a_fresh_networks_to_the_bit(case, seed):
    other = random_params(case.sizes, np.random.default_rng(seed), "flat")
    net, args = case.net, (case.X_given, case.Y_given, 1e-6, case.layout)
    fg.numerical_gradient(net, other, *args)
    ours = fg.numerical_gradient(net, case.params, *args)
    fresh = fg.numerical_gradient(net.replace(), case.params, *args)
    assert len(net._scratches) == 1
    for name, value in fresh.items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)


def report_arrays(report):
    """Every array a report holds or hands out."""
    arrays = [value for value in vars(report).values() if isinstance(value, np.ndarray)]
    for name in report.net.packing.names:
        arrays.extend(report.tensor_arrays(name))
        arrays.extend(report.compared(name))
    arrays.extend(report.numerical.values())
    arrays.extend(report.analytic.values())
    return arrays


def kept_arrays(net):
    arrays = [spare["buffers"] for spare in net._spares]
    for scratch in net._scratches:
        arrays.extend(scratch._arrays.values())
    return arrays


@pytest.mark.parametrize("hidden", ["relu", "tanh"])
def test_no_array_of_a_report_is_kept_for_the_next_check(hidden):
    # a large step: kinks, and with them the kink intervals a report copies out of the kernel's
    case = build_case([6, 12, 9, 4], hidden, "ce_labels", l2=0.2, batch=5, seed=2)
    net, args = case.net, (case.params, case.X_given, case.Y_given)
    first = fg.check(net, *args, epsilon=0.05)
    saved = {name: getattr(first, name).copy() for name in REPORT_ARRAYS}
    kept = kept_arrays(net)
    assert kept and net._scratches[0]._arrays
    for ours in report_arrays(first):
        for scratch in kept:
            assert not np.shares_memory(ours, scratch)
    # the next check, of other parameters, overwrites the kept arrays and leaves the report alone
    other = random_params(case.sizes, np.random.default_rng(7), "flat")
    fg.check(net, other, *args[1:], epsilon=0.05)
    for name, value in saved.items():
        np.testing.assert_array_equal(getattr(first, name), value, err_msg=name)


def test_checks_from_threads_at_once_never_share_arrays():
    case = build_case([20, 30, 16, 4], "relu", "ce_labels", l2=0.1, batch=12, seed=3)
    net, args = case.net, (case.params, case.X_given, case.Y_given)
    expected = fg.check(net.replace(), *args)

    def many(_):
        for _ in range(15):
            report = fg.check(net, *args)
            for name in REPORT_ARRAYS:
                if not np.array_equal(getattr(report, name), getattr(expected, name)):
                    return False
        return True

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(many, range(4)))
    assert len(net._scratches) == 1


def test_a_check_interrupted_from_its_progress_leaves_the_next_checks_to_the_bit(monkeypatch):
    # Ctrl-C from the progress callback after a few chunks: the kernel's tables, lanes and
    # kink widths hold a part-done check's values, and the next checks must not read them
    monkeypatch.setattr(_progress, "PROGRESS_WORK", 10)
    case = build_case([5, 24, 16, 3], "relu", "ce_labels", l2=0.1, batch=12, seed=5)
    net, args = case.net, (case.X_given, case.Y_given)
    other = random_params(case.sizes, np.random.default_rng(8), "flat")
    calls = []

    def interrupt(done, total):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    partial = fg.check(net, other, *args, epsilon=0.05, threads=1, progress=interrupt)
    assert partial.partial and len(calls) == 2
    assert len(net._scratches) == 1
    for params, epsilon in ((case.params, 1e-6), (other, 0.05)):
        ours = fg.check(net, params, *args, epsilon=epsilon)
        fresh = fg.check(net.replace(), params, *args, epsilon=epsilon)
        assert not ours.partial
        assert_same_reports(ours, fresh)


def test_parameters_changed_in_place_between_checks_are_read_again():
    # the same dict and the same array objects, new values: nothing may be keyed by identity
    case = build_case([4, 9, 6, 3], "tanh", "ce_labels", l2=0.2, batch=7, seed=6)
    net, args = case.net, (case.X_given, case.Y_given)
    params = {name: np.array(value) for name, value in case.params.items()}
    fg.check(net, params, *args)
    for name, value in params.items():
        value *= 1.5 if name.startswith("W") else -1.0
    ours = fg.check(net, params, *args)
    fresh = fg.check(net.replace(), {k: v.copy() for k, v in params.items()}, *args)
    assert_same_reports(ours, fresh)
    params["W2"] = params["W2"] + 0.25  # one array replaced in the same dict
    ours = fg.check(net, params, *args)
    fresh = fg.check(net.replace(), {k: v.copy() for k, v in params.items()}, *args)
    assert_same_reports(ours, fresh)


def test_a_network_keeps_a_checks_arrays_only_when_they_fit_the_limit(monkeypatch):
    case = build_case([30, 20, 10, 3], "relu", "ce_labels", batch=8, seed=4)
    net, args = case.net, (case.params, case.X_given, case.Y_given)
    fresh = fg.check(net.replace(), *args)
    everything = fresh.net._scratches[0].nbytes
    monkeypatch.setattr(_scratch, "KEEP_BYTES", everything)
    for _ in range(2):
        assert_same_reports(fg.check(net, *args), fresh)
        assert net._scratches[0].nbytes == everything
    # one byte less: the check lets go of its arrays as it goes, and the network keeps none
    monkeypatch.setattr(_scratch, "KEEP_BYTES", everything - 1)
    other = case.net.replace()
    taken, take = [], _scratch.take
    monkeypatch.setattr(_scratch, "take", lambda n: taken.append(take(n)) or taken[-1])
    assert_same_reports(fg.check(other, *args), fresh)
    assert taken[0].overflowed and not taken[0]._arrays
    assert other._scratches == []


def test_a_check_and_the_passes_share_the_last_calls_buffers():
    # the check's workspace takes the passes' buffers and gives them back: with the user's own
    # dropout masks (a masked workspace) and without, each call is a fresh network's
    case = build_case([5, 7, 6, 3], "relu", "ce_labels", dropout=[0.5, 0.3], batch=6, seed=1)
    net, params, X, Y = case.net, case.params, case.X_given, case.Y_given
    kept = [np.ones((6, 7)), np.ones((6, 6))]
    calls = {
        "check": lambda n: {"num": fg.check(n, params, X, Y)._numerical},
        "check_kept": lambda n: {"num": fg.check(n, params, X, Y, dropout_masks=kept)._numerical},
        "gradients": lambda n: n.gradients(params, X, Y),
        "loss": lambda n: {"J": np.array(n.loss(params, X, Y))},
    }
    for name in ["check", "gradients", "check_kept", "loss", "check", "check_kept", "gradients"]:
        ours, fresh = calls[name](net), calls[name](net.replace())
        for key, value in fresh.items():
            np.testing.assert_array_equal(ours[key], value, err_msg=name)


def test_a_pickled_or_copied_network_carries_no_scratch():
    case = build_case([3, 5, 2], "relu", "mse", batch=3)
    fg.check(case.net, case.params, case.X_given, case.Y_given)
    assert case.net._scratches
    assert pickle.loads(pickle.dumps(case.net))._scratches == []
    assert copy.deepcopy(case.net)._scratches == []


def test_a_network_pickled_without_working_arrays_loads_and_checks(monkeypatch):
    # as a version that kept none pickled it: no _spares, no _scratches in its state
    case = build_case([3, 5, 2], "relu", "mse", batch=3)
    getstate = fg.MLP.__getstate__

    def without_working_arrays(net):
        state = getstate(net)
        for name in ("_spares", "_scratches"):
            state.pop(name, None)
        return state

    monkeypatch.setattr(fg.MLP, "__getstate__", without_working_arrays)
    data = pickle.dumps(case.net)
    monkeypatch.undo()
    loaded = pickle.loads(data)
    args = (case.params, case.X_given, case.Y_given)
    assert loaded.loss(*args) == case.net.loss(*args)
    assert_same_reports(fg.check(loaded, *args), fg.check(case.net.replace(), *args))
    assert loaded._scratches


def test_the_kernels_lane_scratch_is_kept_and_zeroed_again_for_the_next_check():
    from fastgrad.kernels.structures import LaneScratch
    from fastgrad.numerical import _lane_scratch

    scratch = Scratch(limit=1 << 20)
    first = _lane_scratch(scratch, 2, 5)
    assert isinstance(first, LaneScratch)
    for array in first:
        assert not array.any()
        array.fill(1)  # what a run leaves behind
    again = _lane_scratch(scratch, 2, 5)
    assert all(a is b for a, b in zip(again, first, strict=True))
    assert not any(array.any() for array in again)
    # another width builds new views; a scratch that keeps nothing keeps none
    assert _lane_scratch(scratch, 2, 6).jet_layers.shape[-1] == 6
    unkept = Scratch()
    assert _lane_scratch(unkept, 1, 5) is not _lane_scratch(unkept, 1, 5)
    assert not unkept._groups


def test_a_group_is_built_again_for_another_key_or_once_an_array_of_it_is_replaced():
    scratch = Scratch(limit=1 << 20)
    built = []

    def build(n):
        def make():
            built.append(n)
            return scratch.empty("a", n), scratch.zeros("b", 2)

        return make

    first = scratch.group("g", 3, build(3))
    assert scratch.group("g", 3, build(3)) is first and built == [3]
    assert scratch.group("g", 4, build(4))[0].shape == (4,) and built == [3, 4]
    scratch.empty("b", 5)  # replaces an array of the group
    again = scratch.group("g", 4, build(4))
    assert again[1].shape == (2,) and built == [3, 4, 4]
    # a scratch that keeps nothing builds every time
    unkept = Scratch()
    unkept.group("g", 3, lambda: unkept.empty("a", 3))
    unkept.group("g", 3, lambda: unkept.empty("a", 3))
    assert not unkept._groups


def test_kept_views_are_let_go_of_with_the_arrays_they_view():
    from fastgrad.numerical import _lane_scratch

    scratch = Scratch(limit=1 << 20)
    views = _lane_scratch(scratch, 1, 5)
    scratch.empty("huge", 1 << 21)  # passes the limit: everything goes
    assert not scratch._groups
    assert _lane_scratch(scratch, 1, 5) is not views


@pytest.mark.parametrize("output, loss", [("softmax", None), ("sigmoid", "binary_cross_entropy")])
def test_series_a_check_refuses_are_not_taken_from_the_last_checks_tables(output, loss):
    # the first check certifies every logit's series; the second, with logits moved by
    # tens, refuses some: none of the first check's may stand in for them
    net = fg.MLP([3, 4, 2], hidden="tanh", output=output, **({"loss": loss} if loss else {}))
    params = net.init("xavier_normal", seed=0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 3))
    Y = np.array([0, 1, 0, 1, 1]) if output == "softmax" else (rng.random((5, 2)) < 0.5) * 1.0
    fg.check(net, params, X * 1e-3, Y)
    ours = fg.check(net, params, X * 30.0, Y, epsilon=0.3)
    fresh = fg.check(net.replace(), params, X * 30.0, Y, epsilon=0.3)
    assert_same_reports(ours, fresh)
    paths = ours.details["paths"]
    assert paths["series"] < sum(paths.values())  # some entries did leave the series path
