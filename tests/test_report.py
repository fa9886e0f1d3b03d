"""CheckReport: numbers behind the summaries, text and JSON forms."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from networks import case
from strategies import cases

import fastgrad as fg
from fastgrad._magnitude import comparison_floor, gradient_scale
from fastgrad.thresholds import entry_errors


@pytest.fixture
def broken():
    net, params, X, Y = case([6, 5, 4], "tanh", "softmax", batch=5, seed=3)
    grads = net.gradients(params, X, Y)
    grads["dW1"][2, 3] *= 1.2
    grads["db2"] = grads["db2"] * 5
    return net, params, X, Y, grads, fg.check(net, params, X, Y, grads)


def test_summaries_follow_from_the_arrays(broken):
    net, params, X, Y, grads, report = broken
    numerical = fg.numerical_gradient(net, params, X, Y)
    work, _ = net.workspace(params, X, Y)
    scale = max(gradient_scale(work), max(np.abs(n).max() for n in numerical.values()))
    floor = comparison_floor(scale)
    assert report.floor == pytest.approx(floor, rel=1e-15)
    all_a = np.concatenate([grads[k].ravel() for k in numerical])
    all_n = np.concatenate([numerical[k].ravel() for k in numerical])
    assert report.difference == pytest.approx(
        np.linalg.norm(all_a - all_n) / (np.linalg.norm(all_a) + np.linalg.norm(all_n)), rel=1e-12
    )
    for name, t in report.tensors.items():
        a, n = grads["d" + name], numerical["d" + name]
        np.testing.assert_array_equal(report.numerical["d" + name], n)
        errors = entry_errors(a, n, floor)
        assert t.max_error == pytest.approx(errors.max())
        np.testing.assert_allclose(report.compared(name)[3], errors, rtol=1e-12)
        assert t.median_error == pytest.approx(np.median(errors))
        assert sum(t.bands.values()) == a.size == t.checked
        assert t.worst.error == pytest.approx(errors.max())
        assert t.worst.analytic == a[t.worst.index]
    assert report.tensors["W1"].worst.index == (2, 3)


def test_worst_is_sorted_and_bounded(broken):
    *_, report = broken
    worst = report.worst(7)
    assert len(worst) == 7
    errors = [e.error for e in worst]
    assert errors == sorted(errors, reverse=True)
    assert {e.tensor for e in worst[:4]} == {"b2"}  # all four entries, off by x5
    assert worst[4].label == "W1[2, 3]"
    assert report.worst(0) == []
    with pytest.raises(ValueError):
        report.worst(-1)


def test_text_form_shows_table_hints_and_verdict(broken):
    *_, report = broken
    text = str(report)
    for piece in (
        "tensor",
        "difference",
        "W1",
        "b2",
        "WRONG",
        "worst entries:",
        "hints:",
        "b2: analytic = 5 x numerical, x m = 5: a missing 1/m?",
        "W1[2, 3]",
    ):
        assert piece in text
    assert text.rstrip().endswith("-> WRONG")
    assert len(text) < 4000


def test_dict_form_is_json_and_carries_the_same_numbers(broken):
    *_, report = broken
    data = json.loads(report.to_json())
    assert data["verdict"] == "WRONG" and data["difference"] == report.difference
    assert [t["name"] for t in data["tensors"]] == list(report.tensors)
    for row in data["tensors"]:
        t = report.tensors[row["name"]]
        assert row["difference"] == t.difference and row["verdict"] == t.verdict.name
        assert row["bands"] == {v.name: n for v, n in t.bands.items()}
    assert data["worst"][0]["tensor"] == "b2"
    assert data["network"]["sizes"] == [6, 5, 4]


def test_sample_mode_leaves_unchecked_entries_nan():
    net, params, X, Y = case([30, 10, 3], "relu", "softmax", batch=4, seed=1)
    report = fg.check(net, params, X, Y, mode="sample", k=5)
    dW1 = report.numerical["dW1"]
    assert np.isfinite(dW1).sum() == 5 and np.isnan(dW1).sum() == dW1.size - 5
    assert report.analytic["dW1"].shape == dW1.shape


def test_bias_shapes_follow_the_parameters():
    net, params, X, Y = case([4, 3, 2], "relu", "softmax", batch=3, seed=2)
    params = dict(params, b1=params["b1"].reshape(-1, 1))
    report = fg.check(net, params, X, Y)
    assert report.numerical["db1"].shape == (3, 1) and report.numerical["db2"].shape == (2,)


@pytest.mark.parametrize("as_given", [lambda b: b.reshape(1, -1), lambda b: b.reshape(-1, 1)])
def test_bias_entries_are_indexed_in_the_shape_given(as_given):
    net, params, X, Y = case([4, 3, 2], "tanh", "softmax", batch=3, seed=2)
    params = dict(params, b1=as_given(params["b1"]))
    grads = net.gradients(params, X, Y)
    grads["db1"] = grads["db1"].copy()
    where = np.unravel_index(2, grads["db1"].shape)
    grads["db1"][where] += 0.5
    report = fg.check(net, params, X, Y, grads)
    b1 = report.tensors["b1"]
    assert b1.shape == params["b1"].shape
    assert b1.worst.index == where == report.worst(1)[0].index
    assert report.analytic["db1"][b1.worst.index] == b1.worst.analytic
    assert f"b1[{where[0]}, {where[1]}]" in str(report)


def test_verdict_is_the_worst_tensor(broken):
    *_, report = broken
    assert report.verdict == max(t.verdict for t in report.tensors.values())
    assert repr(report).startswith("<CheckReport WRONG")


# --- comparison that knows its own precision ------------------------------------------


def assert_vanishes(report):
    assert report.verdict is fg.Verdict.INCONCLUSIVE, str(report)
    assert report.vanishing
    assert any("the gradient vanishes at this point" in r for r in report.reasons)
    assert "at initialization" in " ".join(report.reasons)
    assert not any(t.verdict.failed for t in report.tensors.values())
    assert report.hints == []


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu"])
def test_exact_fit_is_inconclusive_not_wrong(hidden):
    net = fg.MLP([3, 5, 2], hidden=hidden, output="identity", loss="mse")
    params = net.init("xavier_normal", seed=0)
    X = np.random.default_rng(0).normal(size=(8, 3))
    Y = net.predict(params, X)
    assert_vanishes(fg.check(net, params, X, Y))


def test_saturated_softmax_is_inconclusive_not_wrong():
    net = fg.MLP([1, 2], output="softmax")
    params = {"W1": np.array([[100.0], [-100.0]]), "b1": np.zeros(2)}
    report = fg.check(net, params, np.array([[1.0]]), np.array([0]))
    assert_vanishes(report)
    assert report.tensors["W1"].difference < 1e-7  # was 1.00 with no floor on tensors


def test_least_squares_optimum_is_inconclusive_not_suspicious():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    design = np.c_[X, np.ones(20)]
    solution = np.linalg.lstsq(design, Y, rcond=None)[0]
    net = fg.MLP([3, 2], output="identity", loss="mse")
    params = {"W1": solution[:3].T.copy(), "b1": solution[3].copy()}
    assert_vanishes(fg.check(net, params, X, Y))
    # one step away from the optimum the check has grounds again, and passes
    params["b1"] = params["b1"] + 1e-3
    report = fg.check(net, params, X, Y)
    assert report.verdict is fg.Verdict.CORRECT and not report.vanishing


def test_a_wrong_gradient_at_a_vanishing_point_is_not_excused():
    net = fg.MLP([3, 5, 2], hidden="tanh", output="identity", loss="mse")
    params = net.init("xavier_normal", seed=0)
    X = np.random.default_rng(0).normal(size=(8, 3))
    Y = net.predict(params, X)
    grads = net.gradients(params, X, Y)
    grads["db2"] = grads["db2"] + 1e-6
    report = fg.check(net, params, X, Y, grads)
    assert report.tensors["b2"].verdict is fg.Verdict.WRONG and not report.vanishing


def test_small_real_gradient_with_a_factor_two_is_caught():
    # tanh units pushed to 6.5 pass about 1e-5 of the signal back to W1 and b1
    net = fg.MLP([4, 3, 2], hidden="tanh", output="softmax")
    rng = np.random.default_rng(2)
    params = {
        "W1": 0.1 * rng.normal(size=(3, 4)),
        "b1": 6.5 + 0.1 * rng.normal(size=3),
        "W2": rng.normal(size=(2, 3)),
        "b2": np.zeros(2),
    }
    X, y = rng.normal(size=(6, 4)), np.array([0, 1, 0, 1, 1, 0])
    grads = net.gradients(params, X, y)
    largest = max(np.abs(g).max() for g in grads.values())
    assert 1e-6 < np.abs(grads["dW1"]).max() / largest < 1e-4
    assert fg.check(net, params, X, y, grads).verdict is fg.Verdict.CORRECT
    grads["dW1"] = grads["dW1"] * 2
    report = fg.check(net, params, X, y, grads)
    assert report.tensors["W1"].verdict is fg.Verdict.WRONG
    assert report.tensors["W1"].hint.startswith("analytic = 2.00 x numerical")


def test_tensor_difference_has_the_floor():
    *_, report = _saturated()
    t = report.tensors["b1"]
    assert t.difference <= t.max_error + 1e-30
    assert report.floor > 0 and report.scale >= 1.0


def _saturated():
    net = fg.MLP([1, 2], output="softmax")
    params = {"W1": np.array([[100.0], [-100.0]]), "b1": np.zeros(2)}
    X, y = np.array([[1.0]]), np.array([0])
    return net, params, X, y, fg.check(net, params, X, y)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_a_correct_gradient_never_fails(case):
    report = fg.check(case.net, case.params, case.X_given, case.Y_given, layout=case.layout)
    assert not report.verdict.failed, str(report)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.data())
def test_one_entry_off_by_1e3_relative_is_caught(case, data):
    net = case.net
    grads = net.gradients(case.params, case.X_given, case.Y_given, case.layout)
    largest = max(np.abs(g).max() for g in grads.values())
    # a one-output softmax has no gradient at all: nothing to catch there
    assume(not fg.check(net, case.params, case.X_given, case.Y_given, layout=case.layout).vanishing)
    candidates = [
        (key, index)
        for key, g in grads.items()
        for index in zip(*np.nonzero(np.abs(g) >= 1e-2 * largest), strict=True)
    ]
    assume(candidates)
    key, index = data.draw(st.sampled_from(candidates))
    grads[key][index] *= 1 + 1e-3
    report = fg.check(net, case.params, case.X_given, case.Y_given, grads, layout=case.layout)
    name = key[1:]
    flat = np.ravel_multi_index(index, grads[key].shape)
    set_aside = any(
        e.tensor == name
        and np.isnan(e.error)
        and np.ravel_multi_index(e.index, net.packing.shapes[name]) == flat
        for e in report.kinks
    )
    if set_aside:  # a kink entry with no interval: not compared, so no pass either
        assert not report.verdict.passed
    else:
        assert report.tensors[name].verdict.failed, str(report)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(hidden="relu"), st.data())
def test_relu_blank_rows_zero_biases_never_pass_a_wrong_gradient(case, data):
    params = {k: (np.zeros_like(v) if k.startswith("b") else v) for k, v in case.params.items()}
    X = case.X_given.copy()
    blank = data.draw(st.integers(0, case.X.shape[0] - 1))
    if case.layout == "rows":
        X[blank] = 0.0
    else:
        X[:, blank] = 0.0
    net = case.net
    report = fg.check(net, params, X, case.Y_given, layout=case.layout)
    assert not report.verdict.failed, str(report)
    grads = net.gradients(params, X, case.Y_given, case.layout)
    key = data.draw(st.sampled_from(sorted(grads)))
    assume(np.any(grads[key]))
    grads[key] = grads[key] * 2
    report = fg.check(net, params, X, case.Y_given, grads, layout=case.layout)
    assert not report.verdict.passed, str(report)


# --- kink entries judged by their interval (synthetic kernel output) ------------------


def full_report(net, work, analytic, numerical, kinks, **intervals):
    """The report of a full check at the default step of the given kernel output."""
    return fg.CheckReport(
        net=net,
        theta=work.theta,
        analytic=analytic,
        numerical=numerical,
        checked=np.ones(numerical.size, dtype=bool),
        kinks=kinks,
        loss=work.loss(),
        batch=work.batch,
        epsilon=1e-7,
        thresholds=fg.Thresholds(),
        mode="full",
        scale=gradient_scale(work),
        **intervals,
    )


def kinked_report(
    analytic_shift=0.0, unverifiable=False, intervals=True, width=1e-3, compact=False
):
    """A report of a correct tanh network where entries 3 and 5 of b1 'crossed a kink'.

    Their numerical values are moved off the analytic ones (as a one-sided
    crossing does) and given intervals that hold the analytic value, then the
    analytic value of entry 3 is shifted by ``analytic_shift``.
    """
    net, params, X, Y = case([4, 6, 3], "tanh", "softmax", batch=5, seed=4)
    work, _ = net.workspace(params, X, Y)
    analytic = work.gradient()
    numerical = fg.numerical_gradient(net, params, X, Y)
    flat = np.concatenate([numerical["d" + name].ravel() for name in net.packing.names])
    b1 = net.packing.slice("b1")
    picked = np.array([b1.start + 3, b1.start + 5])
    kinks = np.zeros(flat.size, dtype=np.int64)
    kinks[picked] = 1
    scale = np.abs(analytic[picked]) + 1e-3
    flat[picked] = analytic[picked] + 0.4 * width * scale  # inside, not equal
    lo, hi = flat.copy(), flat.copy()
    lo[picked] = analytic[picked] - width * scale
    hi[picked] = analytic[picked] + width * scale
    analytic = analytic.copy()
    analytic[picked[0]] += analytic_shift
    extra = {}
    if intervals:
        flags = np.zeros(flat.size, dtype=bool)
        flags[picked] = unverifiable
        extra = {"kink_lo": lo, "kink_hi": hi, "unverifiable": flags}
        if compact:  # the intervals of the kinked entries only, as check() gives them
            extra = {key: value[picked] for key, value in extra.items()}
            extra["kink_index"] = picked
    report = full_report(net, work, analytic, flat, kinks, **extra)
    return report, (lo[picked[0]], hi[picked[0]]), analytic[picked[0]]


@pytest.mark.parametrize("unverifiable", [False, True])
@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_intervals_of_the_kinked_entries_alone_make_the_same_report(shift, unverifiable):
    full, *_ = kinked_report(analytic_shift=shift, unverifiable=unverifiable)
    compact, *_ = kinked_report(analytic_shift=shift, unverifiable=unverifiable, compact=True)
    assert compact.verdict == full.verdict and compact.difference == full.difference
    assert [str(e) for e in compact.kinks] == [str(e) for e in full.kinks]
    assert [e.to_dict() for e in compact.worst(5)] == [e.to_dict() for e in full.worst(5)]
    for ours, theirs in zip(compact.compared(), full.compared(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert compact.kink_summary == full.kink_summary


def test_kink_entry_inside_its_interval_passes_and_counts():
    report, interval, _ = kinked_report()
    b1 = report.tensors["b1"]
    assert b1.verdict is fg.Verdict.CORRECT and b1.kinks == 2
    assert b1.checked == 6 and sum(b1.bands.values()) == 6  # the two kinks count
    kinks = report.kinks
    assert [e.index for e in kinks] == [(3,), (5,)]
    assert kinks[0].interval == interval and kinks[0].error == 0.0
    assert "judged by the analytic value's distance from their interval" in str(report)
    assert report.to_dict()["kinks"]["entries"][0]["interval"] == list(interval)


def test_kink_entry_outside_its_interval_is_measured_from_it():
    report, (lo, hi), _ = kinked_report(analytic_shift=1.0)
    a = report.kinks[0].analytic
    nearest = hi if a > hi else lo
    assert report.kinks[0].error == pytest.approx(abs(a - nearest) / (abs(a) + abs(nearest)))
    assert report.tensors["b1"].verdict is fg.Verdict.WRONG
    assert report.worst(1)[0].index == (3,) and report.worst(1)[0].kink
    assert "in [" in str(report.worst(1)[0])


def test_unverifiable_kink_entries_are_inconclusive_never_correct():
    report, *_ = kinked_report(unverifiable=True)
    assert report.tensors["b1"].verdict is fg.Verdict.INCONCLUSIVE
    assert report.verdict is fg.Verdict.INCONCLUSIVE
    assert any(
        "b1: 2 entries have a sample that meets more than one kink" in r for r in report.reasons
    )
    assert all(e.unverifiable and np.isnan(e.error) for e in report.kinks)
    assert report.to_dict()["kinks"]["entries"][0]["error"] is None
    # the other tensors are still judged, and a failure elsewhere outranks
    assert report.tensors["W1"].verdict is fg.Verdict.CORRECT


def test_kinks_without_intervals_are_set_aside_as_before():
    report, *_ = kinked_report(analytic_shift=1.0, intervals=False)
    b1 = report.tensors["b1"]
    assert b1.checked == 6 and sum(b1.bands.values()) == 4  # the two kinks left out
    assert b1.verdict is fg.Verdict.CORRECT  # the shifted entry was not compared
    assert all(np.isnan(e.error) and e.interval is None for e in report.kinks)
    assert "no interval to judge them by" in str(report)


def test_entries_whose_difference_is_not_finite_are_inconclusive_not_wrong():
    net, params, X, Y = case([4, 3, 2], "tanh", "softmax", batch=3, seed=5)
    work, _ = net.workspace(params, X, Y)
    analytic = work.gradient()
    numerical = analytic.copy()
    numerical[[1, 13]] = [np.inf, np.nan]  # W1[0, 1], and b1[1] (W1 has 12 entries)
    no_kinks = np.zeros(numerical.size, dtype=np.int64)

    report = full_report(net, work, analytic, numerical, no_kinks)
    assert report.verdict is fg.Verdict.INCONCLUSIVE
    assert report.tensors["W1"].verdict is fg.Verdict.INCONCLUSIVE
    assert report.tensors["W2"].verdict is fg.Verdict.CORRECT
    assert sum("not finite" in r for r in report.reasons) == 2
    assert np.isfinite(report.difference) and report.difference < 1e-12
    # a wrong entry elsewhere still fails the check
    analytic[-1] += 1.0
    report = full_report(net, work, analytic, numerical, no_kinks)
    assert report.verdict is fg.Verdict.WRONG


def test_gradients_beyond_1e154_are_compared_without_overflow():
    # elu of alpha 1e300: gradients near 1e299, whose squares overflow; the entries that
    # agree must not make their tensor WRONG through a NaN difference
    net = fg.MLP([3, 4, 2], hidden=("elu", 1e300))
    params = net.init(seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    with np.errstate(over="ignore", invalid="ignore"):
        grads = net.gradients(params, X, Y)
        report = fg.check(net, params, X, Y, grads)
        spoiled = {**grads, "dW2": grads["dW2"] * 1.5}
        wrong = fg.check(net, params, X, Y, spoiled)
    assert np.abs(grads["dW2"]).max() > 1e200
    w2 = report.tensors["W2"]
    assert np.isfinite(w2.difference) and w2.difference < 1e-7
    assert w2.verdict != fg.Verdict.WRONG
    assert np.isfinite(report.difference)
    assert all("nan" not in hint for hint in report.hints)
    assert wrong.tensors["W2"].verdict == fg.Verdict.WRONG
    assert wrong.tensors["W2"].difference == pytest.approx(0.2, rel=0.05)


@pytest.mark.parametrize("levels", [(1e-7, 1e-4, 1e-2), (1e-9, 1e-6, 1e-3), (0.1, 0.2, 0.3)])
def test_a_tensors_level_is_the_worse_of_its_two_errors_verdicts(levels):
    # the report classifies each tensor's difference and largest error in Python's
    # comparisons; it must be Thresholds.classify's verdict, boundaries and NaN included
    from fastgrad.report import _worse_level

    thresholds = fg.Thresholds(*levels)
    errors = [0.0, 1.0, np.inf, np.nan]
    for level in levels:  # each boundary and its neighbours
        errors += [np.nextafter(level, 0.0), level, np.nextafter(level, 1.0)]
    for a in errors:
        for b in errors:
            expected = max(int(thresholds.classify(a)), int(thresholds.classify(b)))
            assert _worse_level(a, b, *levels) == expected, (a, b)
