"""CheckReport: numbers behind the summaries, text and JSON forms."""

import json

import numpy as np
import pytest
from networks import case

import fastgrad as fg
from fastgrad.thresholds import entry_errors, error_floor


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
    floor = error_floor(net.loss(params, X, Y), report.epsilon)
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


def test_verdict_is_the_worst_tensor(broken):
    *_, report = broken
    assert report.verdict == max(t.verdict for t in report.tensors.values())
    assert repr(report).startswith("<CheckReport WRONG")
