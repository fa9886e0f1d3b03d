"""Validation of a batch: inputs X and targets Y, in both layouts."""

import re

import naive
import numpy as np
import pytest

import fastgrad as fg
from fastgrad._data import check_layout, prepare_inputs, prepare_targets
from fastgrad._packing import PrecisionWarning

LOSSES = ("mse", "binary_cross_entropy", "cross_entropy")


def given_as(array, layout):
    """The rows-layout ``array`` as the user passes it in ``layout``."""
    return array if layout == "rows" or array.ndim == 1 else array.T


@pytest.fixture(params=["rows", "columns"])
def layout(request):
    return request.param


# -- inputs ---------------------------------------------------------------------------------------


def test_inputs_converted_to_rows(layout, rng):
    X = rng.normal(size=(5, 3))
    out = prepare_inputs(given_as(X, layout), 3, layout)
    np.testing.assert_array_equal(out, X)
    assert out.dtype == np.float64 and out.flags.c_contiguous
    assert not np.shares_memory(out, X)


def test_integer_inputs_accepted(layout):
    X = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(prepare_inputs(given_as(X, layout), 3, layout), X.astype(float))


def test_float32_inputs_warn(layout):
    X = np.ones((2, 3), np.float32)
    with pytest.warns(PrecisionWarning, match="X is float32"):
        out = prepare_inputs(given_as(X, layout), 3, layout)
    assert out.dtype == np.float64


@pytest.mark.parametrize("shape", [(3,), (1, 2, 3), ()])
def test_inputs_wrong_ndim(layout, shape):
    expected = "(batch, 3)" if layout == "rows" else "(3, batch)"
    message = f"X must be 2-D {expected} with layout='{layout}'; got shape {shape}"
    with pytest.raises(ValueError, match=re.escape(message)):
        prepare_inputs(np.zeros(shape), 3, layout)


def test_inputs_wrong_width(layout):
    given = given_as(np.zeros((5, 4)), layout)
    expected = "(batch, 3)" if layout == "rows" else "(3, batch)"
    message = f"X has shape {given.shape}; expected {expected} with layout='{layout}'"
    with pytest.raises(ValueError, match=re.escape(message) + ".*input layer has 3 units"):
        prepare_inputs(given, 3, layout)


def test_empty_batch(layout):
    with pytest.raises(ValueError, match="X holds no samples"):
        prepare_inputs(given_as(np.zeros((0, 3)), layout), 3, layout)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_inputs_non_finite(layout, bad):
    X = np.zeros((4, 3))
    X[2, 1] = bad
    # the index is reported in rows (sample, feature) whatever the layout
    with pytest.raises(ValueError, match=r"X contains 1 non-finite .* index \(2, 1\)"):
        prepare_inputs(given_as(X, layout), 3, layout)


@pytest.mark.parametrize(
    "X", [np.zeros((2, 3), complex), np.zeros((2, 3), object), np.full((2, 3), "1")]
)
def test_inputs_non_real(layout, X):
    with pytest.raises(TypeError, match="X must hold real numbers"):
        prepare_inputs(X, 3, layout)


@pytest.mark.parametrize("name", ["row", "cols", "C", None, "ROWS"])
def test_bad_layout_name(name):
    with pytest.raises(ValueError, match="layout must be 'rows'.*or 'columns'"):
        check_layout(name)
    with pytest.raises(ValueError, match="layout must be"):
        prepare_inputs(np.zeros((2, 3)), 3, name)
    with pytest.raises(ValueError, match="layout must be"):
        prepare_targets(np.zeros((2, 3)), 2, 3, "mse", name)
    net = fg.MLP([3, 2], output="identity")
    params = {"W1": np.zeros((2, 3)), "b1": np.zeros(2)}
    for call in (
        lambda: net.loss(params, np.zeros((2, 3)), np.zeros((2, 2)), layout=name),
        lambda: net.gradients(params, np.zeros((2, 3)), np.zeros((2, 2)), layout=name),
        lambda: net.predict(params, np.zeros((2, 3)), layout=name),
    ):
        with pytest.raises(ValueError, match="layout must be"):
            call()


# -- targets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", LOSSES)
def test_dense_targets(layout, loss, rng):
    Y = rng.random((5, 3))
    out = prepare_targets(given_as(Y, layout), 5, 3, loss, layout)
    np.testing.assert_array_equal(out, Y)
    assert out.dtype == np.float64 and out.flags.c_contiguous
    assert not np.shares_memory(out, Y)


def test_integer_labels_become_one_hot(layout):
    labels = np.array([2, 0, 1, 2])
    out = prepare_targets(labels, 4, 3, "cross_entropy", layout)
    np.testing.assert_array_equal(out, naive.one_hot(labels, 3))


def test_labels_as_a_row_in_columns_layout():
    labels = np.array([[2, 0, 1, 2]])
    out = prepare_targets(labels, 4, 3, "cross_entropy", "columns")
    np.testing.assert_array_equal(out, naive.one_hot(labels[0], 3))


def test_integral_float_and_bool_labels(layout):
    for labels in (np.array([1.0, 0.0]), np.array([True, False])):
        out = prepare_targets(labels, 2, 2, "cross_entropy", layout)
        np.testing.assert_array_equal(out, [[0, 1], [1, 0]])


def test_one_hot_integers(layout):
    one_hot = np.eye(3, dtype=np.int64)[[0, 2, 1]]
    out = prepare_targets(given_as(one_hot, layout), 3, 3, "cross_entropy", layout)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, one_hot)


@pytest.mark.parametrize("label", [3, 7, -1])
def test_labels_out_of_range(layout, label):
    with pytest.raises(ValueError, match=rf"label {label}.*3 units: labels must lie in 0\.\.2"):
        prepare_targets(np.array([0, label, 1]), 3, 3, "cross_entropy", layout)


@pytest.mark.parametrize("labels", [[0, 1.5, 1], [0.25, 1, 1]])
def test_non_integer_labels(layout, labels):
    with pytest.raises(ValueError, match="class labels and must be integers"):
        prepare_targets(np.array(labels), 3, 3, "cross_entropy", layout)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_labels(layout, bad):
    with pytest.raises(ValueError, match="Y contains 1 non-finite .* index 1"):
        prepare_targets(np.array([0.0, bad, 1.0]), 3, 3, "cross_entropy", layout)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_targets(layout, loss, bad):
    Y = np.zeros((4, 3))
    Y[3, 2] = bad
    with pytest.raises(ValueError, match=r"Y contains 1 non-finite .* index \(3, 2\)"):
        prepare_targets(given_as(Y, layout), 4, 3, loss, layout)


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "cross_entropy"])
@pytest.mark.parametrize("value", [-0.25, 1.5])
def test_targets_outside_unit_interval(layout, loss, value):
    Y = np.full((4, 2), 0.5)
    Y[1, 0] = value
    low, high = min(value, 0.5), max(value, 0.5)
    with pytest.raises(
        ValueError,
        match=re.escape(f"Y must lie in [0, 1] for {loss}")
        + ".*"
        + re.escape(f"ranges over [{low:g}, {high:g}]"),
    ):
        prepare_targets(given_as(Y, layout), 4, 2, loss, layout)


def test_mse_targets_may_lie_anywhere(layout):
    Y = np.array([[-3.0, 7.5]])
    np.testing.assert_array_equal(prepare_targets(given_as(Y, layout), 1, 2, "mse", layout), Y)


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy"])
def test_vector_targets_for_one_output(layout, loss):
    y = np.array([0.0, 1.0, 0.25])
    out = prepare_targets(y, 3, 1, loss, layout)
    np.testing.assert_array_equal(out, y[:, None])


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy"])
def test_vector_targets_refused_for_several_outputs(layout, loss):
    wanted = (3, 2) if layout == "rows" else (2, 3)
    with pytest.raises(
        ValueError,
        match=re.escape(f"Y has shape (3,); expected {wanted}") + ".*fits only one output",
    ):
        prepare_targets(np.array([0.0, 1.0, 0.5]), 3, 2, loss, layout)


@pytest.mark.parametrize("loss", LOSSES)
def test_mismatched_batch(layout, loss):
    with pytest.raises(ValueError, match="Y has 2 entries but X has 3 samples"):
        prepare_targets(np.array([0, 1]), 3, 1 if loss != "cross_entropy" else 2, loss, layout)
    given = given_as(np.zeros((2, 4)), layout)
    wanted = (3, 4) if layout == "rows" else (4, 3)
    message = f"Y has shape {given.shape}; expected {wanted}"
    with pytest.raises(ValueError, match=re.escape(message)):
        prepare_targets(given, 3, 4, loss, layout)


@pytest.mark.parametrize("loss", LOSSES)
def test_wrong_number_of_outputs(layout, loss):
    given = given_as(np.zeros((3, 5)), layout)
    wanted = (3, 4) if layout == "rows" else (4, 3)
    message = f"Y has shape {given.shape}; expected {wanted}"
    with pytest.raises(ValueError, match=re.escape(message)):
        prepare_targets(given, 3, 4, loss, layout)


@pytest.mark.parametrize("shape", [(), (3, 2, 1)])
def test_targets_wrong_ndim(layout, shape):
    with pytest.raises(ValueError, match=re.escape(f"Y must be 1-D or 2-D; got shape {shape}")):
        prepare_targets(np.zeros(shape), 3, 2, "mse", layout)


@pytest.mark.parametrize(
    "Y",
    [
        np.zeros((3, 2), complex),
        np.zeros((3, 2), object),
        np.array(["0", "1", "1"]),
        np.array([0, 1, None]),
    ],
)
@pytest.mark.parametrize("loss", LOSSES)
def test_targets_non_real(layout, loss, Y):
    with pytest.raises(TypeError, match="Y must hold real numbers or integer labels"):
        prepare_targets(Y, 3, 2, loss, layout)


def test_float32_targets_warn(layout):
    Y = np.full((2, 3), 0.5, np.float32)
    with pytest.warns(PrecisionWarning, match="Y is float32"):
        prepare_targets(given_as(Y, layout), 2, 3, "binary_cross_entropy", layout)


def test_targets_never_modified(layout):
    Y = np.array([[0.0, 1.0], [1.0, 0.0]])
    before = Y.copy()
    out = prepare_targets(given_as(Y, layout), 2, 2, "cross_entropy", layout)
    out[:] = 9.0
    np.testing.assert_array_equal(Y, before)


# -- through the network -------------------------------------------------------------------------


def test_network_validates_batch(layout):
    net = fg.MLP([3, 4, 2], hidden="tanh")
    params = {"W1": np.zeros((4, 3)), "b1": np.zeros(4), "W2": np.zeros((2, 4)), "b2": np.zeros(2)}
    X = given_as(np.zeros((5, 3)), layout)
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        net.loss(params, X, np.array([0, 1, 2, 0, 1]), layout=layout)
    with pytest.raises(ValueError, match="Y has 4 entries but X has 5 samples"):
        net.gradients(params, X, np.array([0, 1, 1, 0]), layout=layout)
    with pytest.raises(ValueError, match="X has shape"):
        net.predict(params, given_as(np.zeros((5, 2)), layout), layout=layout)
    # all-zero parameters: uniform softmax, J = log 2 exactly in exact arithmetic
    loss = net.loss(params, X, np.array([0, 1, 1, 0, 1]), layout=layout)
    assert loss == pytest.approx(np.log(2), rel=1e-15)
