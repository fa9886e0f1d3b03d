"""The user's own dropout keep-masks: a course-style numpy backprop checked as written."""

import warnings

import naive
import numpy as np
import pytest

import fastgrad as fg

KEEP = 0.8


def course_network(seed=0, sizes=(4, 6, 5, 3), m=8):
    """Columns layout, (n, 1) biases, relu hidden layers, softmax output: the course's code."""
    rng = np.random.default_rng(seed)
    params = {}
    for u in range(1, len(sizes)):
        params[f"W{u}"] = rng.normal(size=(sizes[u], sizes[u - 1])) / np.sqrt(sizes[u - 1])
        params[f"b{u}"] = rng.normal(size=(sizes[u], 1)) * 0.1
    X = rng.normal(size=(sizes[0], m))
    labels = rng.integers(0, sizes[-1], m)
    Y = np.eye(sizes[-1])[labels].T
    masks = [(rng.random((n, m)) < KEEP).astype(float) for n in sizes[1:-1]]
    return list(sizes), params, X, Y, masks


def course_forward_backward(sizes, params, X, Y, masks, forget=(), unscaled=()):
    """Inverted dropout as the course writes it; backprop drops the masks of layers ``forget``
    and the ``1/(1-p)`` scaling of layers ``unscaled``."""
    L = len(sizes) - 1
    m = X.shape[1]
    A, Z = [X], []
    for u in range(1, L + 1):
        Z.append(params[f"W{u}"] @ A[-1] + params[f"b{u}"])
        if u < L:
            A.append(np.maximum(Z[-1], 0) * masks[u - 1] / KEEP)
    e = np.exp(Z[-1] - Z[-1].max(axis=0))
    P = e / e.sum(axis=0)
    J = -np.sum(Y * np.log(P)) / m
    grads = {}
    dZ = (P - Y) / m
    for u in range(L, 0, -1):
        grads[f"dW{u}"] = dZ @ A[u - 1].T
        grads[f"db{u}"] = dZ.sum(axis=1, keepdims=True)
        if u > 1:
            dA = params[f"W{u}"].T @ dZ
            if u - 1 in unscaled:
                dA = dA * masks[u - 2]
            elif u - 1 not in forget:
                dA = dA * masks[u - 2] / KEEP
            dZ = dA * (Z[u - 2] > 0)
    return J, grads


def check_course_backprop(seed=0, forget=(), unscaled=()):
    """Check the course's dropout backprop (with the faults asked for) against its masks."""
    sizes, params, X, Y, masks = course_network(seed=seed)
    J, grads = course_forward_backward(sizes, params, X, Y, masks, forget, unscaled)
    net = fg.MLP(sizes, hidden="relu", dropout=1 - KEEP)
    return fg.check(net, params, X, Y, grads, layout="columns", dropout_masks=masks, loss=J)


def test_course_backprop_with_its_own_masks_checks_correct():
    report = check_course_backprop()
    assert report.verdict in (fg.Verdict.CORRECT, fg.Verdict.ACCEPTABLE), str(report)
    assert not report.reasons
    assert report.analytic["db1"].shape == (6, 1)


@pytest.mark.parametrize("forget", [(1,), (2,)])
def test_backprop_that_forgets_a_mask_is_wrong_with_the_mask_hint(forget):
    report = check_course_backprop(seed=1, forget=forget)
    assert report.verdict == fg.Verdict.WRONG
    expected = f"without the dropout mask of hidden layer(s) {forget[0]}"
    assert any(expected in hint for hint in report.hints), report.hints


@pytest.mark.parametrize("unscaled", [(1,), (2,)])
def test_backprop_that_forgets_the_scaling_is_wrong_with_the_scaling_hint(unscaled):
    report = check_course_backprop(seed=2, unscaled=unscaled)
    assert report.verdict == fg.Verdict.WRONG
    layer = unscaled[0]
    expected = f"the dropout mask D of hidden layer(s) {layer} but without its 1/(1-p) scaling"
    assert any(expected in hint for hint in report.hints), report.hints
    assert not any("without the dropout mask" in hint for hint in report.hints), report.hints


def test_masks_in_loss_gradients_and_numerical_gradient_match_naive():
    sizes, params, X, Y, masks = course_network(seed=2)
    net = fg.MLP(sizes, hidden="relu", dropout=[0.2, 0.5])
    scaled = [mask.T / (1 - rate) for mask, rate in zip(masks, net.dropout, strict=True)]
    args = (sizes, ["relu", "relu"], "softmax", 0.0, params, X.T, Y.T, scaled)
    assert net.loss(params, X, Y, "columns", masks) == pytest.approx(naive.loss(*args), rel=1e-13)
    ours = net.gradients(params, X, Y, "columns", masks)
    numerical = fg.numerical_gradient(net, params, X, Y, layout="columns", dropout_masks=masks)
    for key, value in naive.gradients(*args).items():
        assert np.allclose(ours[key], value, rtol=1e-12, atol=1e-15), key
        assert np.allclose(numerical[key], value, rtol=1e-6, atol=1e-10), key


def test_rows_layout_masks_and_none_for_a_layer_without_dropout():
    sizes, params, X, Y, masks = course_network(seed=3)
    rows = [mask.T for mask in masks]
    net = fg.MLP(sizes, hidden="relu", dropout=[0.2, 0.0])
    value = net.loss(params, X.T, Y.T, dropout_masks=[rows[0], None])
    assert value == net.loss(params, X.T, Y.T, dropout_masks=[rows[0], np.ones_like(rows[1])])


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda m: m[:1], ValueError, r"holds 1 mask\(s\) for 2 hidden layer\(s\)"),
        (lambda m: [m[0].T, m[1]], ValueError, r"dropout_masks\[0\] .* has shape \(8, 6\)"),
        (lambda m: [m[0] * 2, m[1]], ValueError, "must hold 0 .* and 1 .* only"),
        (lambda m: [m[0] / KEEP, m[1]], ValueError, "looks already scaled by 1/\\(1-p\\)"),
        (lambda m: [m[0], None], ValueError, r"dropout_masks\[1\] .* is None"),
        (lambda m: np.stack([m[0], m[0]]), TypeError, "one 0/1 keep-mask per hidden layer"),
    ],
)
def test_bad_masks_are_named(change, error, message):
    sizes, params, X, Y, masks = course_network(seed=4, sizes=(4, 6, 6, 3))
    net = fg.MLP(sizes, hidden="relu", dropout=1 - KEEP)
    with pytest.raises(error, match=message):
        net.loss(params, X, Y, "columns", change(masks))


def test_float32_and_torch_style_masks_need_no_precision_warning():
    sizes, params, X, Y, masks = course_network(seed=6)
    net = fg.MLP(sizes, hidden="relu", dropout=1 - KEEP)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = net.loss(params, X, Y, "columns", [m.astype(np.float32) for m in masks])
    assert value == net.loss(params, X, Y, "columns", masks)


def test_a_mask_that_drops_where_p_is_zero_is_refused():
    sizes, params, X, Y, masks = course_network(seed=5)
    net = fg.MLP(sizes, hidden="relu", dropout=[0.2, 0.0])
    with pytest.raises(ValueError, match="has dropout p = 0 there"):
        fg.check(net, params, X, Y, layout="columns", dropout_masks=masks)


@pytest.mark.parametrize("dropout", [0.3, [0.0, 0.5]])
def test_the_network_s_own_masks_as_0_1_give_the_same_results(dropout):
    net = fg.MLP([5, 7, 6, 3], hidden="tanh", dropout=dropout, dropout_seed=3)
    params = net.init("xavier_normal", seed=1)
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(9, 5)), rng.integers(0, 3, 9)
    keep = net.dropout_masks(9, scaled=False)
    scaled = net.dropout_masks(9)
    for mask, multiplier, rate in zip(keep, scaled, np.broadcast_to(dropout, 2), strict=True):
        assert set(np.unique(mask)) <= {0.0, 1.0}
        np.testing.assert_array_equal(mask / (1.0 - rate), multiplier)
    assert net.loss(params, X, y, dropout_masks=keep) == net.loss(params, X, y)
    ours = net.gradients(params, X, y, dropout_masks=keep)
    for name, value in net.gradients(params, X, y).items():
        np.testing.assert_array_equal(ours[name], value)
    with pytest.raises(ValueError, match=r"scaled=False"):
        fg.check(net, params, X, y, dropout_masks=scaled)
