"""The user's loss value checked first; readings of their gradients that explain a failure."""

import numpy as np
import pytest
from networks import random_params, random_targets

import fastgrad as fg


def batch(sizes, output, seed=0, m=6):
    rng = np.random.default_rng(seed)
    params = random_params(sizes, rng)
    X = rng.normal(size=(m, sizes[0]))
    Y = random_targets(output, m, sizes[-1], rng)
    return params, X, Y


def test_matching_loss_checks_as_usual():
    net = fg.MLP([3, 5, 4, 3], hidden=["tanh", "relu"])
    params, X, Y = batch(net.sizes, "softmax")
    report = fg.check(net, params, X, Y, loss=net.loss(params, X, Y) * (1 + 1e-7))
    assert report.verdict == fg.Verdict.CORRECT and not report.reasons


def test_mis_stated_hidden_activation_is_found():
    truth = fg.MLP([3, 5, 4, 3], hidden=["tanh", "relu"])
    params, X, Y = batch(truth.sizes, "softmax", seed=1)
    grads = truth.gradients(params, X, Y)
    stated = truth.replace(hidden="relu")
    report = fg.check(stated, params, X, Y, grads, loss=truth.loss(params, X, Y))
    assert report.verdict == fg.Verdict.INCONCLUSIVE
    assert report.checked == 0
    assert report.reasons[0].startswith("your loss ")
    assert "the gradients were not compared" in report.reasons[0]
    assert report.reasons[1].startswith("your loss matches hidden=['tanh', 'relu']")
    assert str(report).splitlines()[4].startswith("NOT COMPARED: your loss")


def test_parameters_are_kept_and_a_forgotten_one_is_found():
    # the user's network: leaky relu of slope 0.2, then elu
    truth = fg.MLP([3, 5, 4, 3], hidden=[("leaky_relu", 0.2), "elu"])
    params, X, Y = batch(truth.sizes, "softmax", seed=2)
    grads, loss = truth.gradients(params, X, Y), truth.loss(params, X, Y)
    assert fg.check(truth, params, X, Y, grads, loss=loss).verdict == fg.Verdict.CORRECT
    # described with tanh in layer 2: the candidates keep layer 1's slope
    stated = truth.replace(hidden=[("leaky_relu", 0.2), "tanh"])
    report = fg.check(stated, params, X, Y, grads, loss=loss)
    assert report.verdict == fg.Verdict.INCONCLUSIVE
    assert report.reasons[1].startswith("your loss matches hidden=[('leaky_relu', 0.2), 'elu']")
    # a leaky relu of the default slope, described with slope 0.2: the default is tried
    plain = fg.MLP([3, 5, 3], hidden="leaky_relu")
    params, X, Y = batch(plain.sizes, "softmax", seed=3)
    stated = plain.replace(hidden=("leaky_relu", 0.2))
    report = fg.check(
        stated, params, X, Y, plain.gradients(params, X, Y), loss=plain.loss(params, X, Y)
    )
    assert report.reasons[1].startswith("your loss matches hidden=['leaky_relu']")


LEAKY = ("leaky_relu", 0.2)


@pytest.mark.parametrize(
    ("truth", "stated", "found"),
    [
        ([LEAKY, "tanh"], ["leaky_relu", "tanh"], "[('leaky_relu', 0.2), 'tanh']"),
        ([LEAKY, "tanh"], [("leaky_relu", 0.3), "tanh"], "[('leaky_relu', 0.2), 'tanh']"),
        ([LEAKY, "tanh"], ["relu", "tanh"], "[('leaky_relu', 0.2), 'tanh']"),
        ([("elu", 0.5)], ["elu"], "[('elu', 0.5)]"),
        ([("softplus", 3.0)], ["softplus"], "[('softplus', 3.0)]"),
        ([("elu", 0.5), ("elu", 0.5)], ["elu", "elu"], "[('elu', 0.5), ('elu', 0.5)]"),
    ],
)
def test_mis_stated_activation_parameter_is_found(truth, stated, found):
    # the parameter is solved for from the user's loss, and named where it is a round value
    truth = fg.MLP([3] + [5] * len(truth) + [3], hidden=truth)
    params, X, Y = batch(truth.sizes, "softmax", seed=4)
    grads, loss = truth.gradients(params, X, Y), truth.loss(params, X, Y)
    report = fg.check(truth.replace(hidden=stated), params, X, Y, grads, loss=loss)
    assert report.verdict == fg.Verdict.INCONCLUSIVE
    assert report.reasons[1].startswith(f"your loss matches hidden={found}")


def test_a_parameter_that_is_not_a_round_value_is_not_named():
    # any loss in range has some slope; only a round one is taken for the user's
    truth = fg.MLP([3, 5, 3], hidden=("leaky_relu", 0.1372913))
    params, X, Y = batch(truth.sizes, "softmax", seed=4)
    report = fg.check(
        truth.replace(hidden="leaky_relu"), params, X, Y, loss=truth.loss(params, X, Y)
    )
    assert report.reasons[1].startswith("no nearby description matches")


def test_mis_stated_convention_is_found():
    truth = fg.MLP([3, 4, 4], hidden="tanh", output="identity", reduction="mean")
    params, X, Y = batch(truth.sizes, "identity", seed=2)
    report = fg.check(
        truth.replace(reduction="course"), params, X, Y, loss=truth.loss(params, X, Y)
    )
    assert report.verdict == fg.Verdict.INCONCLUSIVE
    assert "your loss matches reduction='mean'" in report.reasons[1]


def test_mis_stated_output_and_loss_are_found():
    truth = fg.MLP([3, 4, 3], hidden="tanh", output="sigmoid", reduction="mean")
    params, X, Y = batch(truth.sizes, "sigmoid", seed=3)
    report = fg.check(fg.MLP([3, 4, 3], hidden="tanh"), params, X, Y, loss=truth.loss(params, X, Y))
    assert "output='sigmoid', loss='binary_cross_entropy', reduction='mean'" in report.reasons[1]


def test_transposed_weights_are_found_from_the_loss():
    truth = fg.MLP([4, 4, 4], hidden="tanh", weights="in_out")
    params, X, Y = batch(truth.sizes, "softmax", seed=4)
    report = fg.check(truth.replace(weights="out_in"), params, X, Y, loss=truth.loss(params, X, Y))
    assert "your loss matches weights='in_out'" in report.reasons[1]


def test_forgotten_l2_is_found():
    truth = fg.MLP([3, 4, 2], hidden="tanh")
    params, X, Y = batch(truth.sizes, "softmax", seed=5)
    report = fg.check(truth.replace(l2=0.5), params, X, Y, loss=truth.loss(params, X, Y))
    assert "your loss matches l2=0.0" in report.reasons[1]


def test_no_match_says_so():
    net = fg.MLP([3, 4, 2], hidden="tanh")
    params, X, Y = batch(net.sizes, "softmax", seed=6)
    report = fg.check(net, params, X, Y, loss=123.0)
    assert report.verdict == fg.Verdict.INCONCLUSIVE
    assert report.reasons[1].startswith("no nearby description matches")
    assert report.to_dict()["reasons"][0].startswith("your loss 123")


def test_loss_with_own_dropout_masks_not_passed_says_to_pass_them():
    net = fg.MLP([3, 6, 5, 2], hidden="tanh", dropout=[0.5, 0.0])
    params, X, Y = batch(net.sizes, "softmax", seed=7)
    own = [np.random.default_rng(8).random((6, 6)) >= 0.5, None]
    report = fg.check(net, params, X, Y, loss=net.loss(params, X, Y, dropout_masks=own))
    assert report.verdict == fg.Verdict.INCONCLUSIVE
    assert report.reasons[1].startswith("no nearby description matches")
    assert "dropout_masks=" in report.reasons[1]
    report = fg.check(net, params, X, Y, loss=net.loss(params, X, Y), dropout_masks=own)
    assert "dropout_masks=" not in report.reasons[1]


def test_nothing_compared_is_not_shown_as_a_zero_difference():
    net = fg.MLP([3, 4, 2], hidden="tanh")
    params, X, Y = batch(net.sizes, "softmax", seed=6)
    report = fg.check(net, params, X, Y, loss=123.0)
    assert str(report).splitlines()[-1] == "overall: nothing compared -> INCONCLUSIVE"
    assert "difference 0.000e+00" not in report._repr_html_()
    assert "overall: nothing compared" in report._repr_html_()


def test_loss_without_dropout_is_found():
    net = fg.MLP([3, 6, 2], hidden="tanh", dropout=0.3)
    params, X, Y = batch(net.sizes, "softmax", seed=9)
    report = fg.check(net, params, X, Y, loss=net.replace(dropout=None).loss(params, X, Y))
    assert "your loss matches dropout=None" in report.reasons[1]


def test_a_wrong_gradient_with_a_wrong_description_is_not_called_wrong():
    truth = fg.MLP([3, 5, 3], hidden="tanh")
    params, X, Y = batch(truth.sizes, "softmax", seed=7)
    grads = {k: 2 * v for k, v in truth.gradients(params, X, Y).items()}
    report = fg.check(
        truth.replace(hidden="relu"), params, X, Y, grads, loss=truth.loss(params, X, Y)
    )
    assert report.verdict == fg.Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("value", "error"),
    [("1.0", TypeError), (np.nan, ValueError), (True, TypeError), (np.ones(2), ValueError)],
)
def test_bad_loss_values_are_refused(value, error):
    net = fg.MLP([2, 3, 2])
    params, X, Y = batch(net.sizes, "softmax")
    with pytest.raises(error, match="loss"):
        fg.check(net, params, X, Y, loss=value)


def test_loss_as_a_zero_d_array_is_accepted():
    net = fg.MLP([2, 3, 2])
    params, X, Y = batch(net.sizes, "softmax")
    report = fg.check(net, params, X, Y, loss=np.array(net.loss(params, X, Y)))
    assert report.verdict.passed


def test_square_network_with_x_at_w_weights_gets_the_layout_hint():
    truth = fg.MLP([4, 4, 4], hidden="tanh", weights="in_out")
    params, X, Y = batch(truth.sizes, "softmax", seed=8)
    grads = truth.gradients(params, X, Y)
    net = truth.replace(weights="out_in")
    report = fg.check(net, params, X, Y, grads)
    assert report.verdict == fg.Verdict.WRONG
    assert any("your weights look (n_in, n_out)" in hint for hint in report.hints)
    assert fg.check(net, params, X, Y, grads, weights="in_out").verdict == fg.Verdict.CORRECT
    transposed = {k: v.T if k.startswith("W") else v for k, v in params.items()}
    grads_t = {k: v.T if k.startswith("dW") else v for k, v in grads.items()}
    assert fg.check(net, transposed, X, Y, grads_t).verdict == fg.Verdict.CORRECT


def test_a_plain_wrong_gradient_gets_no_layout_hint():
    net = fg.MLP([4, 4, 4], hidden="tanh")
    params, X, Y = batch(net.sizes, "softmax", seed=9)
    grads = {k: -v for k, v in net.gradients(params, X, Y).items()}
    report = fg.check(net, params, X, Y, grads)
    assert not any("your weights look" in hint for hint in report.hints)


def test_non_square_x_at_w_weights_are_named_in_the_shape_error():
    net = fg.MLP([3, 5, 2])
    params, X, Y = batch(net.sizes, "softmax")
    flipped = {k: v.T if k.startswith("W") else v for k, v in params.items()}
    with pytest.raises(ValueError, match=r"your weights look \(n_in, n_out\).*weights='in_out'"):
        fg.check(net, flipped, X, Y)
    report = fg.check(net, flipped, X, Y, weights="in_out")
    assert report.verdict.passed
    assert report.tensors["W1"].shape == (3, 5)
    assert report.numerical["dW1"].shape == (3, 5)


def test_in_out_entries_are_indexed_as_the_user_stores_them():
    net = fg.MLP([3, 5, 2], hidden="tanh", weights="in_out")
    params, X, Y = batch([3, 5, 2], "softmax")
    params = {k: v.T.copy() if k.startswith("W") else v for k, v in params.items()}
    grads = net.gradients(params, X, Y)
    grads["dW1"] = grads["dW1"].copy()
    grads["dW1"][2, 4] += 1.0
    worst = fg.check(net, params, X, Y, grads).worst(1)[0]
    assert (worst.tensor, worst.index) == ("W1", (2, 4))


def test_two_mis_stated_activations_are_found_on_a_small_network():
    truth = fg.MLP([3, 5, 4, 3], hidden=["sigmoid", "elu"])
    params, X, Y = batch(truth.sizes, "softmax", seed=10)
    report = fg.check(truth.replace(hidden="relu"), params, X, Y, loss=truth.loss(params, X, Y))
    assert "your loss matches hidden=['sigmoid', 'elu']" in report.reasons[1]
