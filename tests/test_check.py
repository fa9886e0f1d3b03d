"""fastgrad.check: verdicts on correct gradients, and seeded bugs caught, localized, explained."""

import importlib
import tracemalloc

import naive
import numba
import numpy as np
import pytest
from networks import ENTRIES, OUTPUTS, blank_row_at_zero_biases, case, naive_args

import fastgrad as fg

BATCH = 8


def user_gradients(net, params, X, Y, **changes):
    """Gradients from the naive backprop, as a user's code would produce them."""
    sizes, hidden, output, l2, masks = naive_args(net, X)
    args = dict(sizes=sizes, hidden=hidden, output=output, l2=l2, masks=masks)
    args.update(changes)
    return naive.gradients(
        args["sizes"], args["hidden"], args["output"], args["l2"], params, X, Y, args["masks"]
    )


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", ENTRIES)
def test_correct_gradients_come_out_correct(hidden, output):
    net, params, X, Y = case([7, 6, 5, 4], hidden, output, batch=BATCH, seed=1, l2=0.1)
    report = fg.check(net, params, X, Y, user_gradients(net, params, X, Y))
    assert report.verdict == fg.Verdict.CORRECT, str(report)
    assert report.hints == []
    own = fg.check(net, params, X, Y)
    assert own.verdict == fg.Verdict.CORRECT


def test_correct_relu_network_with_dropout_raises_no_alarm():
    net, params, X, Y = case([20, 16, 12, 5], "relu", "softmax", batch=16, seed=4, dropout=0.4)
    report = fg.check(net, params, X, Y, user_gradients(net, params, X, Y))
    assert report.verdict == fg.Verdict.CORRECT


@pytest.fixture
def mnist_like():
    net, params, X, Y = case([12, 10, 8, 4], "tanh", "softmax", batch=BATCH, seed=7, l2=0.5)
    return net, params, X, Y, user_gradients(net, params, X, Y)


def failing(report):
    return {name for name, t in report.tensors.items() if t.verdict >= fg.Verdict.SUSPICIOUS}


def test_scaled_tensor(mnist_like):
    net, params, X, Y, grads = mnist_like
    grads["dW2"] = grads["dW2"] * 1.5
    report = fg.check(net, params, X, Y, grads)
    assert report.verdict == fg.Verdict.WRONG
    assert failing(report) == {"W2"}
    assert "1.5 x numerical" in report.tensors["W2"].hint


def test_missing_one_over_m(mnist_like):
    net, params, X, Y, grads = mnist_like
    grads["db1"] = grads["db1"] * BATCH
    report = fg.check(net, params, X, Y, grads)
    assert failing(report) == {"b1"}
    assert f"m = {BATCH}: a missing 1/m" in report.tensors["b1"].hint


def test_sign_flip(mnist_like):
    net, params, X, Y, grads = mnist_like
    grads["dW3"] = -grads["dW3"]
    report = fg.check(net, params, X, Y, grads)
    assert failing(report) == {"W3"}
    assert "sign flipped" in report.tensors["W3"].hint


def test_transposed_square_weight(mnist_like):
    net, params, X, Y, grads = mnist_like
    net, params, X, Y = case([6, 5, 5, 3], "tanh", "softmax", batch=BATCH, seed=2)
    grads = user_gradients(net, params, X, Y)
    grads["dW2"] = grads["dW2"].T.copy()
    report = fg.check(net, params, X, Y, grads)
    assert failing(report) == {"W2"}
    assert "transposed" in report.tensors["W2"].hint


def test_zeroed_tensor(mnist_like):
    net, params, X, Y, grads = mnist_like
    grads["dW1"] = np.zeros_like(grads["dW1"])
    report = fg.check(net, params, X, Y, grads)
    assert failing(report) == {"W1"}
    assert "all zero" in report.tensors["W1"].hint


def test_forgotten_l2(mnist_like):
    net, params, X, Y, _ = mnist_like
    grads = user_gradients(net, params, X, Y, l2=0.0)
    report = fg.check(net, params, X, Y, grads)
    assert failing(report) == {"W1", "W2", "W3"}
    for name in ("W1", "W2", "W3"):
        assert "L2 term" in report.tensors[name].hint and "missing" in report.tensors[name].hint


def test_single_entry_off_by_one_percent(mnist_like):
    net, params, X, Y, grads = mnist_like
    grads["dW1"][7, 9] *= 1.01
    report = fg.check(net, params, X, Y, grads)
    assert failing(report) == {"W1"}
    worst = report.worst(1)[0]
    assert (worst.tensor, worst.index) == ("W1", (7, 9))
    assert "W1[7, 9]" in report.tensors["W1"].hint
    assert report.tensors["W1"].bands[fg.Verdict.SUSPICIOUS] == 1


def test_wrong_activation_derivative_is_traced_to_its_layer(monkeypatch):
    net, params, X, Y = case([6, 7, 5, 3], "tanh", "softmax", batch=BATCH, seed=3)
    correct = naive.activation_derivative

    def sloppy(name, z):  # 1 - tanh(z) instead of 1 - tanh(z)^2, in the first hidden layer only
        if z.shape[1] == 7:
            return 1.0 - np.tanh(z)
        return correct(name, z)

    monkeypatch.setattr(naive, "activation_derivative", sloppy)
    grads = user_gradients(net, params, X, Y)
    monkeypatch.setattr(naive, "activation_derivative", correct)
    report = fg.check(net, params, X, Y, grads)
    assert failing(report) == {"W1", "b1"}
    for name in ("W1", "b1"):
        assert "hidden layer 1" in report.tensors[name].hint
        assert "derivative" in report.tensors[name].hint


def test_rows_of_one_unit_wrong():
    net, params, X, Y = case([10, 12, 4], "tanh", "softmax", batch=BATCH, seed=5)
    grads = user_gradients(net, params, X, Y)
    grads["dW1"][3] *= 1.3
    grads["dW1"][8] *= 0.5
    report = fg.check(net, params, X, Y, grads)
    assert failing(report) == {"W1"}
    assert "rows 3, 8" in report.tensors["W1"].hint


def test_float32_user_gradients_are_compared_in_float64_with_a_warning(mnist_like):
    net, params, X, Y, grads = mnist_like
    low = {key: value.astype(np.float32) for key, value in grads.items()}
    with pytest.warns(fg.PrecisionWarning, match="float32"):
        report = fg.check(net, params, X, Y, low)
    assert report.verdict.passed
    # the float32 rounding of the gradient shows, far above float64's
    assert 1e-9 < report.difference < 1e-7


def test_sample_mode_is_stratified_seeded_and_says_what_it_sampled():
    net, params, X, Y = case([40, 30, 5], "relu", "softmax", batch=4, seed=1)
    first = fg.check(net, params, X, Y, mode="sample", k=6, seed=3)
    again = fg.check(net, params, X, Y, mode="sample", k=6, seed=3)
    other = fg.check(net, params, X, Y, mode="sample", k=6, seed=4)
    assert first.tensors["W1"].checked == 6 and first.tensors["b2"].checked == 5
    assert first.checked == 6 + 6 + 6 + 5
    picked = np.flatnonzero(~np.isnan(first.numerical["dW1"].ravel()))
    np.testing.assert_array_equal(picked, np.flatnonzero(~np.isnan(again.numerical["dW1"].ravel())))
    assert not np.array_equal(picked, np.flatnonzero(~np.isnan(other.numerical["dW1"].ravel())))
    # one entry from each sixth of W1's 1200 entries
    np.testing.assert_array_equal(picked // 200, np.arange(6))
    assert first.details["samples_per_tensor"] == 6


def test_directional_mode_passes_correct_and_catches_a_scaled_tensor(mnist_like):
    net, params, X, Y, grads = mnist_like
    report = fg.check(net, params, X, Y, grads, mode="directional", k=3)
    assert report.verdict == fg.Verdict.CORRECT
    assert all(len(t.directions) == 3 for t in report.tensors.values())
    grads["dW2"] = grads["dW2"] * 2
    report = fg.check(net, params, X, Y, grads, mode="directional", k=3)
    assert failing(report) == {"W2"}
    assert "2.00 x numerical" in report.tensors["W2"].hint


def test_directional_mode_localizes_a_wrong_entry_by_bisection():
    net, params, X, Y = case([60, 40, 5], "relu", "softmax", batch=6, seed=6)
    grads = user_gradients(net, params, X, Y)
    grads["dW1"][17, 33] += 10 * np.abs(grads["dW1"]).max()
    report = fg.check(net, params, X, Y, grads, mode="directional", k=2)
    assert failing(report) == {"W1"}
    worst = report.worst(1)[0]
    assert (worst.tensor, worst.index) == ("W1", (17, 33))
    assert report.checked < 50  # bisection differenced a handful of entries, not 2,400


def test_directional_mode_locates_a_single_doubled_entry_in_almost_every_seed():
    # a doubled entry moves a random direction by ~1e-4 relative: the old bisection,
    # judging halves by the SUSPICIOUS level, lost the trail in 5 of 6 seeds
    net = fg.MLP([256, 64, 10])
    params = net.init("he_normal", seed=0)
    X = np.random.default_rng(0).normal(size=(16, 256))
    y = np.arange(16) % 10
    grads = net.gradients(params, X, y)
    grads["dW1"][5, 7] *= 2
    seeds = range(20)
    located = 0
    for seed in seeds:
        report = fg.check(net, params, X, y, grads, mode="directional", seed=seed)
        w1 = report.tensors["W1"]
        assert w1.directions_checked == 4 and w1.entries_checked == report.checked
        assert "0 of 17,098 entries computed" not in str(report)
        if not report.verdict.failed:
            continue  # no direction saw it: nothing to locate
        assert w1.hint is not None and "columns" not in w1.hint
        if report.worst(1) and report.worst(1)[0].label == "W1[5, 7]":
            located += 1
            assert w1.hint.startswith("only 1 entry is wrong, the rest agree: W1[5, 7]")
        else:
            assert w1.hint.startswith("location unknown")
    assert located >= 0.95 * len(seeds)


def test_directional_counts_directions_and_entries_apart():
    net, params, X, Y = case([60, 40, 5], "relu", "softmax", batch=6, seed=6)
    grads = user_gradients(net, params, X, Y)
    grads["dW1"][17, 33] += 10 * np.abs(grads["dW1"]).max()
    report = fg.check(net, params, X, Y, grads, mode="directional", k=2)
    w1, b1 = report.tensors["W1"], report.tensors["b1"]
    assert (w1.directions_checked, b1.directions_checked, b1.entries_checked) == (2, 2, 0)
    assert w1.checked == 2 + w1.entries_checked == sum(w1.bands.values())
    assert 0 < w1.entries_checked == report.checked <= 8
    text = str(report)
    assert "2 directions per tensor compared" in text and "entries localized" in text
    assert "2 dir + " in text
    assert "2 directions per tensor compared" in report._repr_html_()
    data = report.to_dict()["tensors"][0]
    assert (data["directions_checked"], data["entries_checked"]) == (2, w1.entries_checked)


def test_kinks_at_exact_zero_are_reported_and_kept_out_of_the_verdict():
    rng = np.random.default_rng(2)
    X = rng.integers(-2, 3, size=(8, 4)).astype(float)
    params = {
        "W1": rng.integers(-2, 3, size=(5, 4)).astype(float),
        "b1": np.array([0.0, 0.5, 0.5, 0.5, 0.5]),
        "W2": rng.normal(size=(3, 5)),
        "b2": np.zeros(3),
    }
    params["W1"][0] = [1.0, -1.0, 0.0, 0.0]
    X[:, 1] = X[:, 0]  # unit 0 sits exactly at its kink on every sample
    y = rng.integers(0, 3, 8)
    net = fg.MLP([4, 5, 3], hidden="relu")
    report = fg.check(net, params, X, y)
    assert report.verdict <= fg.Verdict.ACCEPTABLE
    assert report.tensors["b1"].kinks == 1 and report.tensors["W1"].kinks > 0
    assert {e.tensor for e in report.kinks} == {"W1", "b1"}
    assert all(e.index[0] == 0 for e in report.kinks)


@pytest.mark.threads
def test_partial_report_when_interrupted():
    net, params, X, Y = case([256, 64, 32, 10], "relu", "softmax", batch=256, seed=0)
    calls = []

    def stop_after_first(done, total):
        calls.append(done)
        raise KeyboardInterrupt

    # one thread: chunks keep at least four tasks per thread, so with many threads this
    # network's 106 tasks would be a single chunk and nothing would be left to interrupt
    report = fg.check(net, params, X, Y, progress=stop_after_first, threads=1)
    assert report.partial and len(calls) == 1
    assert 0 < report.checked == calls[0] < net.n_params
    assert "PARTIAL" in str(report)
    # tensors never reached show no difference, in text ("-") and in JSON (null)
    unreached = [t for t in report.to_dict()["tensors"] if t["checked"] == 0]
    assert unreached
    for t in unreached:
        assert t["verdict"] == "INCONCLUSIVE"
        assert t["difference"] is None and t["max_error"] is None and t["median_error"] is None


@pytest.mark.threads
def test_threads_option_is_restored():
    net, params, X, Y = case([5, 4, 3], "relu", "softmax", batch=3, seed=0)
    before = numba.get_num_threads()
    report = fg.check(net, params, X, Y, threads=1)
    assert numba.get_num_threads() == before
    assert report.details["threads"] == 1
    with pytest.raises(ValueError, match="threads"):
        fg.check(net, params, X, Y, threads=0)


def test_columns_layout_gives_the_same_report():
    net, params, X, Y = case([5, 4, 3], "relu", "softmax", batch=6, seed=9)
    rows = fg.check(net, params, X, Y)
    columns = fg.check(net, params, X.T, Y.T, layout="columns")
    np.testing.assert_array_equal(rows.numerical["dW1"], columns.numerical["dW1"])
    assert rows.difference == columns.difference


def test_inputs_are_not_modified(mnist_like):
    net, params, X, Y, grads = mnist_like
    copies = [dict((k, v.copy()) for k, v in d.items()) for d in (params, grads)]
    x_copy, y_copy = X.copy(), Y.copy()
    fg.check(net, params, X, Y, grads, mode="directional")
    fg.check(net, params, X, Y, grads)
    for original, copy in zip((params, grads), copies, strict=True):
        for key in original:
            np.testing.assert_array_equal(original[key], copy[key])
    np.testing.assert_array_equal(X, x_copy)
    np.testing.assert_array_equal(Y, y_copy)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "everything"}, ValueError, "mode must be one of"),
        ({"epsilon": 0.0}, ValueError, "epsilon"),
        ({"epsilon": "small"}, TypeError, "epsilon"),
        ({"mode": "sample", "k": 0}, ValueError, "k must be a positive integer"),
        ({"thresholds": (1e-2, 1e-4, 1e-7)}, ValueError, "must increase"),
    ],
)
def test_bad_options_are_refused(kwargs, error, match):
    net, params, X, Y = case([3, 2], "relu", "softmax", batch=2)
    with pytest.raises(error, match=match):
        fg.check(net, params, X, Y, **kwargs)


def test_bad_gradients_are_refused_naming_the_tensor():
    net, params, X, Y = case([3, 4, 2], "relu", "softmax", batch=2)
    grads = user_gradients(net, params, X, Y)
    del grads["db2"]
    with pytest.raises(ValueError, match="missing db2"):
        fg.check(net, params, X, Y, grads)
    grads = user_gradients(net, params, X, Y)
    grads["dW1"] = grads["dW1"][:, :2]
    with pytest.raises(ValueError, match=r"dW1 has shape \(4, 2\); expected \(4, 3\)"):
        fg.check(net, params, X, Y, grads)


def test_interrupted_before_any_entry_is_not_a_pass():
    net, params, X, Y = case([256, 64, 32, 10], "relu", "softmax", batch=256, seed=0)

    def stop_at_once(done, total):
        raise KeyboardInterrupt

    from fastgrad.numerical import Differences

    original = Differences.run

    def interrupted_run(self, *args):
        raise KeyboardInterrupt

    Differences.run = interrupted_run
    try:
        report = fg.check(net, params, X, Y, progress=stop_at_once)
    finally:
        Differences.run = original
    assert report.partial and report.checked == 0
    assert report.verdict is fg.Verdict.INCONCLUSIVE
    text = str(report)
    assert "the check was interrupted" in text and "no entry compared" in text
    data = report.to_dict()
    assert data["verdict"] == "INCONCLUSIVE" and len(data["reasons"]) == 2
    assert all(t["verdict"] == "INCONCLUSIVE" for t in data["tensors"])
    assert all(t["difference"] is None for t in data["tensors"]) and data["difference"] is None


def test_k_is_refused_in_full_mode():
    net, params, X, Y = case([3, 2], "relu", "softmax", batch=2)
    with pytest.raises(ValueError, match="k applies to"):
        fg.check(net, params, X, Y, k=5)


def test_a_blank_row_at_zero_biases_is_never_a_pass_for_a_wrong_bias_gradient():
    # every pre-activation of the blank sample sits on the relu kink, so every bias entry
    # crosses one: what cannot be compared must not read CORRECT
    net, params, X, y = blank_row_at_zero_biases()
    grads = net.gradients(params, X, y)
    grads["db1"] = grads["db1"] * 32
    grads["db2"] = grads["db2"] * -1
    for mode in ("full", "sample", "directional"):
        report = fg.check(net, params, X, y, grads, mode=mode)
        assert not report.verdict.passed, mode
    with pytest.raises(AssertionError, match="INCONCLUSIVE|WRONG"):
        fg.testing.assert_gradients_close(net, params, X, y, grads)


def test_directional_mode_differences_a_tensor_whose_directions_all_cross_kinks():
    # every direction over b2 moves all of layer 2 of the blank sample across its kinks, so
    # no direction can be compared; entry by entry each crosses one kink and is judged
    net, params, X, y = blank_row_at_zero_biases()
    grads = net.gradients(params, X, y)
    grads["db2"] = grads["db2"] * -1
    full = fg.check(net, params, X, y, grads)
    assert full.tensors["b2"].verdict is fg.Verdict.WRONG
    for seed in range(3):
        report = fg.check(net, params, X, y, grads, mode="directional", seed=seed)
        assert report.tensors["b2"].verdict is fg.Verdict.WRONG, seed
        assert report.verdict is fg.Verdict.WRONG
        assert report.worst(1)[0].tensor == "b2"
    # a right gradient there is not made to fail by it
    right = fg.check(net, params, X, y, net.gradients(params, X, y), mode="directional")
    assert not right.verdict.failed


@pytest.mark.parametrize("seed", range(10))
def test_directional_mode_catches_one_entry_off_by_1e3_relative_like_full_mode(seed):
    # along a direction the entry's error is diluted into the ACCEPTABLE band; entries are not
    net, params, X, Y = case([5, 16, 8], "tanh", "softmax", batch=6, seed=seed)
    right = net.gradients(params, X, Y)
    largest = max(np.abs(g).max() for g in right.values())
    rng = np.random.default_rng(seed)
    for key in ("dW1", "db1", "dW2", "db2"):
        grads = {k: g.copy() for k, g in right.items()}
        flat = rng.choice(np.flatnonzero(np.abs(grads[key]) >= 1e-2 * largest))
        grads[key].flat[flat] *= 1 + 1e-3
        assert fg.check(net, params, X, Y, grads).tensors[key[1:]].verdict.failed
        report = fg.check(net, params, X, Y, grads, mode="directional", seed=seed)
        assert report.tensors[key[1:]].verdict.failed, str(report)
        worst = report.worst(1)[0]
        assert worst.tensor == key[1:]
        assert np.ravel_multi_index(worst.index, grads[key].shape) == flat


def test_check_forwards_kink_intervals_and_path_counts_from_the_kernel(monkeypatch):
    # the finite-difference wrapper may carry intervals of its kinked entries and per-path
    # counts; check() spreads them over the flat vector (in the wrapper's entry order)
    checking = importlib.import_module("fastgrad.check")  # the module, not the function

    class WithIntervals(checking.Differences):
        def compute(self, *args, **kwargs):
            values, kinks, done = super().compute(*args, **kwargs)
            kinks = kinks.copy()
            kinks[::7] = 1
            self.kink_index = np.flatnonzero(kinks)
            self.kink_lo = values[self.kink_index] - 1e-3
            self.kink_hi = values[self.kink_index] + 1e-3
            self.unverifiable = np.zeros(values.size, dtype=bool)
            self.unverifiable[::14] = True
            self.paths = {"series": int(done), "line": 0, "direct": 0}
            return values, kinks, done

    monkeypatch.setattr(checking, "Differences", WithIntervals)
    monkeypatch.setattr(
        importlib.import_module("fastgrad._directional"), "Differences", WithIntervals
    )
    net, params, X, Y = case([5, 4, 3], "tanh", "softmax", batch=4, seed=1)
    report = fg.check(net, params, X, Y, mode="sample", k=3)
    assert report.details["paths"]["series"] == report.checked
    kinks = report.kinks
    assert kinks and all(e.interval is not None for e in kinks)
    for e in kinks:
        assert e.interval[0] == pytest.approx(e.numerical - 1e-3)
        assert e.interval[1] == pytest.approx(e.numerical + 1e-3)
    judged = [e for e in kinks if not e.unverifiable]
    assert judged and all(e.error == 0.0 for e in judged)  # inside their interval
    assert any(e.unverifiable for e in kinks)
    assert report.verdict is fg.Verdict.INCONCLUSIVE
    assert any("a sample that meets more than one kink" in r for r in report.reasons)
    # the entries a directional check localizes carry theirs too
    grads = net.gradients(params, X, Y)
    grads["dW1"][1, 2] *= 3
    report = fg.check(net, params, X, Y, grads, mode="directional")
    assert report.details["paths"]["series"] == report.checked > 0
    assert all(e.interval is not None for e in report.kinks)


def test_directional_mode_differences_a_tensor_whole_when_the_trail_is_lost(monkeypatch):
    directional = importlib.import_module("fastgrad._directional")
    # a bisection that ends on the wrong leaf: the tensor is then differenced whole
    monkeypatch.setattr(directional, "_localize", lambda *args: np.arange(4))
    net, params, X, Y = case([60, 40, 5], "relu", "softmax", batch=6, seed=6)
    grads = user_gradients(net, params, X, Y)
    grads["dW1"][17, 33] *= 2
    report = fg.check(net, params, X, Y, grads, mode="directional", k=4)
    assert report.tensors["W1"].entries_checked == 40 * 60
    assert report.worst(1)[0].label == "W1[17, 33]"
    assert report.tensors["W1"].hint.startswith("only 1 entry is wrong, the rest agree")
    # past the budget the tensor is not differenced, and the hint says so
    monkeypatch.setattr(directional, "WHOLE_TENSOR_WORK", 0)
    report = fg.check(net, params, X, Y, grads, mode="directional", k=4)
    assert report.tensors["W1"].entries_checked == 4
    assert report.tensors["W1"].hint.startswith("location unknown")


def test_directional_mode_compares_at_most_a_tensors_size_of_directions():
    net, params, X, Y = case([6, 5, 2], "tanh", "softmax", batch=4, seed=2)
    report = fg.check(net, params, X, Y, mode="directional", k=40)
    counts = {name: len(t.directions) for name, t in report.tensors.items()}
    assert counts == {"W1": 30, "b1": 5, "W2": 10, "b2": 2}
    assert report.details["directions"] == 30
    assert "47 directions (up to 30 per tensor) compared" in str(report)


def test_directional_blocks_draw_and_compare_the_directions_of_one_draw(monkeypatch):
    directional = importlib.import_module("fastgrad._directional")
    net, params, X, Y = case([12, 9, 3], "relu", "softmax", batch=5, seed=7)
    grads = user_gradients(net, params, X, Y)
    grads["dW1"][4, 7] *= 3
    whole = fg.check(net, params, X, Y, grads, mode="directional", k=20).to_dict()
    # blocks of 2 directions for W1 (108 entries), one draw's rows in turn
    monkeypatch.setattr(directional, "BLOCK_FLOATS", 250)
    blocks = fg.check(net, params, X, Y, grads, mode="directional", k=20).to_dict()
    del whole["seconds"], blocks["seconds"]
    assert blocks == whole  # same compiled kernel, one direction per column: bit for bit
    assert whole["verdict"] == "WRONG"


def test_directional_memory_is_bounded_whatever_k():
    net, params, X, Y = case([64, 64], "tanh", "identity", batch=2, seed=1)
    tracemalloc.start()
    try:
        report = fg.check(net, params, X, Y, mode="directional", k=10**12)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.details["directions"] == 64 * 64
    # all 4,096 directions of W1 at once would take 128 MiB per copy
    assert peak < 48 * 2**20, peak


def test_an_ordinary_check_is_carried_by_the_series_path():
    net, params, X, Y = case([30, 20, 10], "relu", "softmax", batch=16, seed=3)
    report = fg.check(net, params, X, Y)
    paths = report.details["paths"]
    assert set(paths) == {"series", "line", "direct"}
    assert paths["series"] > 0.9 * sum(paths.values()), paths
    assert report.details["method"] == "exact"


@pytest.mark.parametrize("mode", ["full", "sample"])
def test_the_direct_method_uses_no_series_and_reaches_the_same_verdicts(mnist_like, mode):
    net, params, X, Y, grads = mnist_like
    grads["dW2"] = grads["dW2"] * 1.5
    exact = fg.check(net, params, X, Y, grads, mode=mode)
    direct = fg.check(net, params, X, Y, grads, mode=mode, method="direct")
    assert direct.details["paths"]["series"] == direct.details["paths"]["line"] == 0
    assert direct.details["paths"]["direct"] > 0
    assert {n: t.verdict for n, t in direct.tensors.items()} == {
        n: t.verdict for n, t in exact.tensors.items()
    }
    np.testing.assert_allclose(direct.numerical["dW1"], exact.numerical["dW1"], rtol=1e-10)
    with pytest.raises(ValueError, match="method must be one of"):
        fg.check(net, params, X, Y, grads, method="fast")
