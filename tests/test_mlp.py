"""MLP: loss, backprop and predict against tests/naive.py; the constructor; dropout masks."""

import copy
import json
import re

import naive
import numpy as np
import pytest
from compare import assert_close, course_difference, reference, relative_error, rounding_scale
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import PARAMETRIZED
from strategies import HIDDEN, TARGETS, build_case, cases, random_params

import fastgrad as fg

RTOL = 1e-12


def snapshot(*values):
    return copy.deepcopy(values)


def assert_unchanged(before, after):
    for old, new in zip(before, after, strict=True):
        if isinstance(old, dict):
            assert old.keys() == new.keys()
            for key in old:
                assert_unchanged([old[key]], [new[key]])
        else:
            new = np.asarray(new)
            assert old.dtype == new.dtype and old.shape == new.shape
            np.testing.assert_array_equal(old, new)


def assert_matches_naive(case):
    net, layout = case.net, case.layout
    before = snapshot(case.params, case.X_given, case.Y_given)
    ref, scale = reference(case), rounding_scale(case)

    loss = net.loss(case.params, case.X_given, case.Y_given, layout=layout)
    assert isinstance(loss, float)
    assert_close("J", loss, ref.loss, scale.loss)

    grads = net.gradients(case.params, case.X_given, case.Y_given, layout=layout)
    assert sorted(grads) == sorted(ref.grads)
    for key in ref.grads:
        assert grads[key].shape == case.params[key[1:]].shape, key
        assert grads[key].dtype == np.float64
        assert_close(key, grads[key], ref.grads[key], scale.grads[key])

    if not case.has_dropout:
        out = net.predict(case.params, case.X_given, layout=layout)
        assert out.shape == (ref.output.T if layout == "columns" else ref.output).shape
        assert_close("output", out.T if layout == "columns" else out, ref.output, scale.output)

    assert_unchanged(before, (case.params, case.X_given, case.Y_given))


# -- forward and backward against the naive reference -------------------------------------


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("hidden", HIDDEN + PARAMETRIZED)
@settings(max_examples=8)
@given(data=st.data())
def test_every_activation_and_loss_matches_naive(hidden, target, data):
    assert_matches_naive(data.draw(cases(hidden=hidden, target=target, min_depth=2)))


@settings(max_examples=60)
@given(case=cases())
def test_mixed_networks_match_naive(case):
    assert_matches_naive(case)


@pytest.mark.parametrize("target", ["mse", "bce", "ce_labels"])
def test_network_without_hidden_layer_matches_naive(target):
    assert_matches_naive(build_case([5, 3], "relu", target, l2=0.4, batch=6, seed=3))


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_predict_matches_naive(layout):
    case = build_case([4, 6, 5, 3], ["tanh", "elu"], "ce_labels", batch=7, layout=layout, seed=11)
    assert_matches_naive(case)
    probs = case.net.predict(case.params, case.X_given, layout=layout)
    np.testing.assert_allclose(probs.sum(axis=0 if layout == "columns" else 1), 1.0, rtol=1e-15)


def test_dropout_and_l2_change_the_objective():
    # Guards the naive comparisons: they would pass vacuously if masks or L2 were ignored.
    plain = build_case([3, 6, 2], "tanh", "mse", batch=8, seed=5)
    both = build_case([3, 6, 2], "tanh", "mse", l2=0.5, dropout=0.5, batch=8, seed=5)
    assert not np.allclose(both.masks[0], 1.0)
    args = (plain.params, plain.X, plain.Y)
    assert abs(both.net.loss(*args) - plain.net.loss(*args)) > 1e-3
    assert_matches_naive(both)


# -- backward against the numerical gradient of the naive loss -------------------------------

NUMERICAL_CASES = [
    # sizes, hidden, target, l2, dropout, seed
    ([3, 5, 4], "tanh", "mse", 0.0, None, 1),
    ([4, 6, 3, 2], ["sigmoid", "softplus"], "bce", 0.3, None, 2),
    ([5, 4, 4, 3], ["elu", "tanh"], "ce_labels", 0.0, 0.3, 3),
    ([2, 7, 3], "softplus", "ce_soft", 0.2, None, 4),
    ([6, 3, 5, 4, 2], ["tanh", "elu", "sigmoid"], "mse", 0.1, 0.2, 5),
    ([3, 8, 1], "sigmoid", "bce", 0.0, None, 6),
]


@pytest.mark.parametrize(("sizes", "hidden", "target", "l2", "dropout", "seed"), NUMERICAL_CASES)
def test_backprop_matches_numerical_gradient(sizes, hidden, target, l2, dropout, seed):
    case = build_case(
        sizes, hidden, target, l2=l2, dropout=dropout, batch=7, seed=seed, bias_shape="mixed"
    )
    numerical = naive.numerical_gradient(*case.naive_args, epsilon=1e-5)
    grads = case.net.gradients(case.params, case.X, case.Y)
    # Truncation (eps^2) and rounding (u/eps) leave about 1e-9 on these networks.
    for key, ref in numerical.items():
        assert grads[key].shape == ref.shape
        assert course_difference(grads[key], ref) < 1e-7, key


# -- layouts, shapes and the inputs --------------------------------------------------------


def test_layouts_agree_exactly():
    case = build_case([4, 5, 3], "relu", "ce_soft", batch=6, seed=8)
    net, params = case.net, case.params
    columns = net.loss(params, case.X.T, case.Y.T, layout="columns")
    assert net.loss(params, case.X, case.Y) == columns
    rows = net.gradients(params, case.X, case.Y)
    cols = net.gradients(params, case.X.T, case.Y.T, layout="columns")
    for key in rows:
        np.testing.assert_array_equal(rows[key], cols[key])
    columns = net.predict(params, case.X.T, "columns")
    np.testing.assert_array_equal(net.predict(params, case.X), columns.T)


def test_gradients_are_fresh_arrays():
    case = build_case([3, 4, 2], "tanh", "mse", batch=3, seed=9)
    first = case.net.gradients(case.params, case.X, case.Y)
    first["dW1"][...] = 7.0
    second = case.net.gradients(case.params, case.X, case.Y)
    assert not np.any(second["dW1"] == 7.0)
    for key, value in second.items():
        assert not np.shares_memory(value, case.params[key[1:]])


def test_inputs_never_modified_float32_int_and_noncontiguous():
    net = fg.MLP([3, 4, 2], hidden="tanh", output="sigmoid", l2=0.2, dropout=0.25)
    rng = np.random.default_rng(2)
    params = random_params(net.sizes, rng, "mixed")
    params["W1"] = np.asfortranarray(params["W1"])
    params["b1"] = params["b1"].astype(np.float32)
    params["W2"] = rng.integers(-2, 3, size=(2, 4))
    X = rng.normal(size=(3, 10))[:, ::2].T  # non-contiguous (5, 3)
    Y = rng.integers(0, 2, size=(5, 2))
    before = snapshot(params, X, Y)
    for call in (
        lambda: net.loss(params, X, Y),
        lambda: net.gradients(params, X, Y),
        lambda: net.predict(params, X),
    ):
        with pytest.warns(fg.PrecisionWarning, match="b1 is float32"):
            call()
    assert_unchanged(before, (params, X, Y))


def test_float32_input_is_computed_in_float64():
    case = build_case([3, 4, 2], "tanh", "mse", batch=5, seed=12)
    X32 = case.X.astype(np.float32)
    with pytest.warns(fg.PrecisionWarning, match="X is float32"):
        loss = case.net.loss(case.params, X32, case.Y)
    ref = naive.loss(
        case.sizes,
        case.hidden,
        case.output,
        case.l2,
        case.params,
        X32.astype(np.float64),
        case.Y,
        case.masks,
    )
    assert relative_error(loss, ref) <= RTOL


def test_bias_shapes_come_back_as_given():
    case = build_case([3, 4, 4, 2], "relu", "bce", bias_shape="column", batch=4, seed=1)
    case.params["b2"] = case.params["b2"].ravel()
    grads = case.net.gradients(case.params, case.X, case.Y)
    assert grads["db1"].shape == (4, 1)
    assert grads["db2"].shape == (4,)
    assert grads["db3"].shape == (2, 1)


# -- the constructor --------------------------------------------------------------------------


def test_loss_is_inferred_from_output():
    assert fg.MLP([2, 3], output="identity").loss_name == "mse"
    assert fg.MLP([2, 3], output="sigmoid").loss_name == "binary_cross_entropy"
    assert fg.MLP([2, 3], output="softmax").loss_name == "cross_entropy"
    assert fg.MLP([2, 3]).output == "softmax"


def test_hidden_names_per_layer():
    net = fg.MLP([2, 3, 4, 5], hidden=["tanh", "elu"])
    assert net.hidden == ("tanh", "elu")
    assert fg.MLP([2, 3, 4, 5], hidden="sigmoid").hidden == ("sigmoid", "sigmoid")
    assert fg.MLP([2, 3, 4, 5]).hidden == ("relu", "relu")


def test_hidden_entries_with_parameters():
    net = fg.MLP([4, 8, 6, 5, 3], hidden=[("leaky_relu", 0.2), "tanh", ("softplus", 2)])
    assert net.hidden == ("leaky_relu", "tanh", "softplus")
    assert net.hidden_parameters == (0.2, None, 2.0)
    assert net.hidden_entries == [("leaky_relu", 0.2), "tanh", ("softplus", 2.0)]
    assert isinstance(net.hidden_parameters[2], float)
    # a plain name has the default parameter, shown as the name
    plain = fg.MLP([2, 3, 3, 2], hidden=["leaky_relu", "elu"])
    assert plain.hidden_parameters == (0.01, 1.0)
    assert plain.hidden_entries == ["leaky_relu", "elu"]
    assert fg.MLP([2, 3, 2], hidden=("leaky_relu", 0.01)).hidden_entries == ["leaky_relu"]
    # one pair (a tuple or, as JSON gives it, a list) stands for every hidden layer
    for pair in (("elu", 0.5), ["elu", 0.5]):
        assert fg.MLP([2, 3, 3, 2], hidden=pair).hidden_entries == [("elu", 0.5)] * 2
    assert (
        fg.MLP([2, 3, 3, 2], hidden=[("elu", np.float32(0.5)), "relu"]).hidden_parameters[0] == 0.5
    )


def test_parameters_in_repr_options_and_json():
    net = fg.MLP([4, 8, 6, 3], hidden=[("leaky_relu", 0.2), "tanh"])
    assert "hidden=[('leaky_relu', 0.2), 'tanh']" in repr(net)
    assert "hidden=('elu', 0.5)," in repr(fg.MLP([2, 3, 3, 2], hidden=("elu", 0.5)))
    assert "hidden='leaky_relu'" in repr(fg.MLP([2, 3, 2], hidden="leaky_relu"))
    assert net.options()["hidden"] == [("leaky_relu", 0.2), "tanh"]
    rebuilt = fg.MLP(**net.options())
    assert rebuilt.hidden_parameters == net.hidden_parameters
    params = net.init(seed=0)
    X = np.random.default_rng(0).normal(size=(5, 4))
    y = np.arange(5) % 3
    report = fg.check(net, params, X, y)
    text = str(report)
    assert "hidden=[('leaky_relu', 0.2), 'tanh']" in text.splitlines()[0]
    network = json.loads(report.to_json())["network"]
    assert network["hidden"] == [["leaky_relu", 0.2], "tanh"]
    again = fg.MLP(net.sizes, hidden=network["hidden"])
    assert again.loss(params, X, y) == net.loss(params, X, y)
    assert "(&#x27;leaky_relu&#x27;, 0.2)" in report._repr_html_()


@pytest.mark.parametrize(
    ("hidden", "message"),
    [
        (("relu", 0.5), "'relu' takes no parameter"),
        (("tanh", 1.0), "'tanh' takes no parameter"),
        (("identity", 0.0), "'identity' takes no parameter"),
        (("leaky_relu", float("nan")), "leaky_relu: its slope must be a finite number"),
        (("leaky_relu", float("inf")), "leaky_relu: its slope must be a finite number"),
        (("elu", float("-inf")), "elu: its alpha must be a finite number"),
        (("elu", 10**400), "elu: its alpha must be a finite number"),
        (("softplus", 0.0), "softplus: its beta must be a finite number > 0"),
        (("softplus", -2.0), "softplus: its beta must be a finite number > 0"),
        (("leaky_relu", True), "leaky_relu: its slope must be a finite number"),
        (("gelu", 0.5), "unknown hidden activation 'gelu'"),
        (("elu", "0.5"), "a hidden entry is an activation name or a"),
        (("elu", 0.5, 1.0), "a hidden entry is an activation name or a"),
    ],
)
def test_bad_hidden_parameters_are_named(hidden, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fg.MLP([2, 3, 3, 2], hidden=[hidden, "tanh"])


def test_he_init_takes_each_leaky_layer_slope():
    net = fg.MLP([400, 300, 300, 200, 10], hidden=[("leaky_relu", 0.5), "tanh", "leaky_relu"])
    for method in ("he_normal", "kaiming_uniform"):
        params = net.init(method, seed=0)
        for layer, slope in ((1, 0.5), (2, 0.0), (3, 0.01), (4, 0.0)):
            gain = np.sqrt(2.0 / (1.0 + slope**2))
            std = float(np.std(params[f"W{layer}"]))
            assert std == pytest.approx(gain / np.sqrt(net.sizes[layer - 1]), rel=0.02), layer
    # given a or nonlinearity, the user's choice holds in every layer
    forced = net.init("he_normal", seed=0, a=0.0)
    assert float(np.std(forced["W1"])) == pytest.approx(np.sqrt(2.0 / 400), rel=0.02)
    linear = net.init("he_normal", seed=0, nonlinearity="linear")
    assert float(np.std(linear["W1"])) == pytest.approx(np.sqrt(1.0 / 400), rel=0.02)


def test_unknown_activation_lists_the_valid_ones():
    with pytest.raises(ValueError, match="gelu") as info:
        fg.MLP([2, 3, 2], hidden="gelu")
    for name in HIDDEN:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="swish"):
        fg.MLP([2, 3, 3, 2], hidden=["tanh", "swish"])


def test_unknown_output_and_loss_list_the_valid_ones():
    with pytest.raises(ValueError, match="tanh") as info:
        fg.MLP([2, 3], output="tanh")
    for name in ("identity", "sigmoid", "softmax"):
        assert name in str(info.value)
    with pytest.raises(ValueError, match="hinge") as info:
        fg.MLP([2, 3], loss="hinge")
    for name in ("mse", "binary_cross_entropy", "cross_entropy"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("output", "loss"),
    [("sigmoid", "mse"), ("softmax", "binary_cross_entropy"), ("identity", "cross_entropy")],
)
def test_invalid_pair_lists_the_valid_pairs(output, loss):
    with pytest.raises(ValueError, match=f"{output}.*{loss}") as info:
        fg.MLP([2, 3], output=output, loss=loss)
    for pair in ("identity+mse", "sigmoid+binary_cross_entropy", "softmax+cross_entropy"):
        assert pair in str(info.value)


@pytest.mark.parametrize("sizes", [[], [3], (7,)])
def test_too_few_sizes(sizes):
    with pytest.raises(ValueError, match="at least an input and an output"):
        fg.MLP(sizes)


@pytest.mark.parametrize("sizes", [5, "345", None])
def test_sizes_not_a_sequence(sizes):
    with pytest.raises(TypeError, match="sizes"):
        fg.MLP(sizes)


@pytest.mark.parametrize(
    "sizes", [[3, 0, 2], [3, -1, 2], [3, 2.0, 2], [3, 2.5, 2], [True, 2], [3, "4", 2], [3, None]]
)
def test_sizes_must_be_positive_integers(sizes):
    with pytest.raises(ValueError, match="positive integers"):
        fg.MLP(sizes)


def test_numpy_integer_sizes_are_accepted():
    net = fg.MLP(np.array([3, 4, 2]))
    assert net.sizes == (3, 4, 2)
    assert all(type(s) is int for s in net.sizes)


@pytest.mark.parametrize(
    ("sizes", "hidden"),
    [
        ([2, 3, 2], ["tanh", "tanh"]),
        ([2, 3, 3, 2], ["tanh"]),
        ([2, 3], ["tanh"]),
        ([2, 3, 3, 2], []),
    ],
)
def test_hidden_list_of_wrong_length(sizes, hidden):
    n_hidden = len(sizes) - 2
    with pytest.raises(ValueError, match=rf"{len(hidden)} activation\(s\) for {n_hidden} hidden"):
        fg.MLP(sizes, hidden=hidden)


@pytest.mark.parametrize("l2", [-0.1, -1, float("nan"), float("inf"), "0.1", None])
def test_l2_must_be_finite_and_nonnegative(l2):
    with pytest.raises(ValueError, match="l2"):
        fg.MLP([2, 3], l2=l2)


@pytest.mark.parametrize("l2", [0, 0.0, 1, 2.5, np.float64(0.3)])
def test_valid_l2(l2):
    assert fg.MLP([2, 3], l2=l2).l2 == float(l2)


@pytest.mark.parametrize(
    "dropout", [1.0, 1.5, -0.1, float("nan"), [0.2, 1.0], [-0.5, 0.1], [0.2, "x"]]
)
def test_dropout_must_lie_in_unit_interval(dropout):
    with pytest.raises(ValueError, match=r"dropout rates must lie in \[0, 1\)"):
        fg.MLP([2, 3, 3, 2], dropout=dropout)


@pytest.mark.parametrize("dropout", [1.0, -0.2, float("nan")])
def test_dropout_is_validated_without_hidden_layers(dropout):
    with pytest.raises(ValueError, match="dropout"):
        fg.MLP([2, 3], dropout=dropout)


@pytest.mark.parametrize(
    ("sizes", "dropout"), [([2, 3, 2], [0.1, 0.2]), ([2, 3, 3, 2], [0.1]), ([2, 3], [0.5])]
)
def test_dropout_list_of_wrong_length(sizes, dropout):
    with pytest.raises(ValueError, match=rf"{len(dropout)} rate\(s\) for {len(sizes) - 2} hidden"):
        fg.MLP(sizes, dropout=dropout)


def test_dropout_rates_per_layer():
    assert fg.MLP([2, 3, 3, 2], dropout=[0.1, 0.0]).dropout == (0.1, 0.0)
    assert fg.MLP([2, 3, 3, 2], dropout=0.25).dropout == (0.25, 0.25)
    assert fg.MLP([2, 3, 3, 2]).dropout == (0.0, 0.0)


# -- repr, n_params, param_names ---------------------------------------------------------------


def test_repr():
    assert repr(fg.MLP([4, 5, 3], hidden="tanh")) == (
        "MLP([4, 5, 3], hidden='tanh', output='softmax', loss='cross_entropy')"
    )
    assert repr(
        fg.MLP([4, 5, 5, 1], hidden=["elu", "relu"], output="sigmoid", l2=0.5, dropout=[0.1, 0.0])
    ) == (
        "MLP([4, 5, 5, 1], hidden=['elu', 'relu'], output='sigmoid', "
        "loss='binary_cross_entropy', l2=0.5, dropout=[0.1, 0.0])"
    )


@given(case=cases())
def test_repr_rebuilds_an_equal_network(case):
    net = case.net
    again = eval(repr(net), {"MLP": fg.MLP})  # noqa: S307 - our own repr
    for attribute in ("sizes", "hidden", "output", "loss_name", "l2", "dropout"):
        assert getattr(again, attribute) == getattr(net, attribute)


@given(sizes=st.lists(st.integers(1, 50), min_size=2, max_size=6))
def test_n_params_and_param_names(sizes):
    net = fg.MLP(sizes, hidden="tanh")
    assert net.n_params == sum((sizes[k - 1] + 1) * sizes[k] for k in range(1, len(sizes)))
    expected = [f"{kind}{k}" for k in range(1, len(sizes)) for kind in "Wb"]
    assert net.param_names == expected
    params = random_params(sizes, np.random.default_rng(0))
    assert sorted(net.gradients(params, np.ones((2, sizes[0])), np.zeros(2, int))) == sorted(
        "d" + name for name in expected
    )


# -- dropout masks -----------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_masks_values_and_rate(p):
    net = fg.MLP([3, 8, 5, 2], dropout=p)
    batch = 20000
    masks = net.dropout_masks(batch)
    assert [m.shape for m in masks] == [(batch, 8), (batch, 5)]
    for mask in masks:
        assert mask.dtype == np.float64
        kept = mask != 0.0
        np.testing.assert_array_equal(mask[kept], 1.0 / (1.0 - p))
        # binomial standard deviation of the fraction is below 0.004 here
        assert abs((~kept).mean() - p) < 0.02


def test_dropout_masks_per_layer_rates_and_zero():
    net = fg.MLP([3, 8, 5, 6, 2], dropout=[0.0, 0.5, 0.0])
    masks = net.dropout_masks(4000)
    np.testing.assert_array_equal(masks[0], 1.0)
    np.testing.assert_array_equal(masks[2], 1.0)
    assert set(np.unique(masks[1])) == {0.0, 2.0}
    assert abs((masks[1] == 0).mean() - 0.5) < 0.03
    np.testing.assert_array_equal(fg.MLP([3, 8, 2]).dropout_masks(5)[0], np.ones((5, 8)))


def test_dropout_masks_are_seeded():
    masks = fg.MLP([3, 16, 2], dropout=0.5, dropout_seed=7).dropout_masks(50)
    same = fg.MLP([3, 16, 2], dropout=0.5, dropout_seed=7).dropout_masks(50)
    other = fg.MLP([3, 16, 2], dropout=0.5, dropout_seed=8).dropout_masks(50)
    np.testing.assert_array_equal(masks[0], same[0])
    assert not np.array_equal(masks[0], other[0])
    net = fg.MLP([3, 16, 2], dropout=0.5, dropout_seed=7)
    np.testing.assert_array_equal(net.dropout_masks(50)[0], net.dropout_masks(50)[0])


def test_dropout_masks_are_held_fixed_across_calls():
    case = build_case([3, 6, 2], "tanh", "mse", dropout=0.5, batch=8, seed=2)
    net, args = case.net, (case.params, case.X, case.Y)
    assert net.loss(*args) == net.loss(*args)
    assert re.search(r"dropout=\[0\.5\]", repr(net))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": None}, "hidden must be an activation name"),
        ({"hidden": 3}, "hidden must be an activation name"),
        ({"dropout": "half"}, "dropout must be a rate"),
        ({"dropout_seed": None}, "dropout_seed must be an integer"),
    ],
)
def test_wrong_types_are_named(kwargs, match):
    with pytest.raises(TypeError, match=match):
        fg.MLP([3, 4, 2], **kwargs)


def test_zero_dimensional_array_is_a_rate():
    net = fg.MLP([3, 4, 2], dropout=np.array(0.25))
    assert net.dropout == (0.25,)


def test_predict_keeps_every_unit_under_dropout():
    rng = np.random.default_rng(3)
    with_dropout = fg.MLP([4, 6, 3], hidden="tanh", dropout=0.5)
    without = fg.MLP([4, 6, 3], hidden="tanh")
    params = {
        "W1": rng.normal(size=(6, 4)),
        "b1": rng.normal(size=6),
        "W2": rng.normal(size=(3, 6)),
        "b2": rng.normal(size=3),
    }
    X = rng.normal(size=(5, 4))
    np.testing.assert_array_equal(with_dropout.predict(params, X), without.predict(params, X))


def test_precision_warning_points_at_the_callers_line():
    net = fg.MLP([3, 2], hidden=[])
    params = {"W1": np.ones((2, 3), dtype=np.float32), "b1": np.zeros(2)}
    with pytest.warns(fg.PrecisionWarning) as caught:
        net.loss(params, np.ones((2, 3)), np.array([0, 1]))
    assert caught[0].filename == __file__
