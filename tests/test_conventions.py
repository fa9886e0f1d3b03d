"""Loss conventions: J, its gradient and its centered differences in each reduction."""

import naive
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import OUTPUTS, random_params, random_targets
from strategies import cases

import fastgrad as fg
from fastgrad._conventions import REDUCTIONS

LOSSES = {"identity": "mse", "sigmoid": "binary_cross_entropy", "softmax": "cross_entropy"}


def elementwise(output, logits, Y):
    """Per-element losses as torch's reductions see them (softmax: per sample)."""
    if output == "identity":
        return (logits - Y) ** 2
    if output == "sigmoid":
        return np.logaddexp(0.0, logits) - Y * logits
    return naive.per_sample_loss(output, logits, Y)


def reference_loss(sizes, hidden, output, reduction, l2, params, X, Y, masks=None):
    """J of a convention, written from its definition."""
    if masks is None:
        masks = [np.ones((X.shape[0], n)) for n in sizes[1:-1]]
    Z, _ = naive.forward(sizes, hidden, params, X, masks)
    m = X.shape[0]
    if reduction == "course":
        data = naive.per_sample_loss(output, Z[-1], Y).mean()
    elif reduction == "mean":
        data = elementwise(output, Z[-1], Y).mean()
    else:
        data = elementwise(output, Z[-1], Y).sum()
    penalty = sum(np.sum(np.asarray(params[f"W{k}"]) ** 2) for k in range(1, len(sizes)))
    return data + l2 / (2 * m) * penalty


def reference_gradient(sizes, hidden, output, reduction, l2, params, X, Y, epsilon=1e-5):
    """Centered differences of :func:`reference_loss` in extended precision."""
    ld = np.longdouble
    params = {k: np.asarray(v, dtype=ld) for k, v in params.items()}
    X, Y = np.asarray(X, dtype=ld), np.asarray(Y, dtype=ld)
    out = {}
    for name, base in params.items():
        grad = np.zeros(base.shape)
        for index in np.ndindex(*base.shape):
            values = []
            for sign in (1, -1):
                trial = dict(params)
                trial[name] = base.copy()
                trial[name][index] += sign * ld(epsilon)
                values.append(reference_loss(sizes, hidden, output, reduction, l2, trial, X, Y))
            grad[index] = float((values[0] - values[1]) / (2 * ld(epsilon)))
        out["d" + name] = grad
    return out


def make(output, reduction, seed, l2=0.0):
    rng = np.random.default_rng(seed)
    # two outputs at least: a one-output softmax is constant, its bias gradient exactly 0
    sizes = [int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(rng.integers(2, 6))]
    hidden = ["tanh"]
    net = fg.MLP(sizes, hidden=hidden, output=output, l2=l2, reduction=reduction)
    params = random_params(sizes, rng)
    batch = int(rng.integers(1, 8))
    X = rng.normal(size=(batch, sizes[0]))
    Y = random_targets(output, batch, sizes[-1], rng)
    return net, params, X, Y


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("output", OUTPUTS)
def test_loss_is_the_conventions_definition(output, reduction, seed):
    net, params, X, Y = make(output, reduction, seed, l2=0.3)
    expected = reference_loss(net.sizes, list(net.hidden), output, reduction, 0.3, params, X, Y)
    assert net.loss(params, X, Y) == pytest.approx(expected, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("output", OUTPUTS)
def test_gradient_and_numerical_match_extended_precision_differences(output, reduction, seed):
    net, params, X, Y = make(output, reduction, seed, l2=0.2)
    expected = reference_gradient(net.sizes, list(net.hidden), output, reduction, 0.2, params, X, Y)
    analytic = net.gradients(params, X, Y)
    numerical = fg.numerical_gradient(net, params, X, Y)
    for key, value in expected.items():
        scale = np.abs(value).max() + 1e-12
        assert np.abs(analytic[key] - value).max() <= 1e-8 * scale, key
        assert np.abs(numerical[key] - value).max() <= 1e-7 * scale, key


@pytest.mark.parametrize("mode", ["full", "directional"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("output", OUTPUTS)
def test_own_backprop_checks_correct_in_every_convention(output, reduction, mode):
    net, params, X, Y = make(output, reduction, 5, l2=0.1)
    report = fg.check(net, params, X, Y, mode=mode)
    assert report.verdict == fg.Verdict.CORRECT
    assert report.loss == net.loss(params, X, Y)


def test_course_convention_is_bitwise_unchanged():
    net, params, X, Y = make("identity", "course", 3, l2=0.5)
    explicit = net.replace(reduction="course")
    for key, value in net.gradients(params, X, Y).items():
        assert np.array_equal(value, explicit.gradients(params, X, Y)[key])
    masks = [np.ones((X.shape[0], n)) for n in net.sizes[1:-1]]
    naive_grads = naive.gradients(net.sizes, list(net.hidden), "identity", 0.5, params, X, Y, masks)
    for key, value in naive_grads.items():
        assert np.allclose(net.gradients(params, X, Y)[key], value, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("output", "k", "factor"),
    [("identity", 4, 0.5), ("identity", 8, 0.25), ("sigmoid", 2, 0.5), ("sigmoid", 4, 0.25)],
)
def test_torch_mean_gradient_against_course_net_names_the_convention(output, k, factor):
    rng = np.random.default_rng(k)
    sizes = [3, 5, k]
    net = fg.MLP(sizes, hidden="tanh", output=output)
    params = random_params(sizes, rng)
    X = rng.normal(size=(6, 3))
    Y = random_targets(output, 6, k, rng)
    grads = net.replace(reduction="mean").gradients(params, X, Y)
    report = fg.check(net, params, X, Y, grads)
    assert report.verdict == fg.Verdict.WRONG
    hint = report.tensors["W1"].hint
    assert f"analytic = {factor:.4g} x numerical" in hint
    assert "reduction='mean'" in hint
    assert fg.check(net.replace(reduction="mean"), params, X, Y, grads).verdict.passed


def test_mse_mean_at_two_outputs_is_the_course_convention():
    net = fg.MLP([2, 3, 2], output="identity")
    rng = np.random.default_rng(0)
    params = random_params([2, 3, 2], rng)
    X, Y = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    assert net.loss(params, X, Y) == net.replace(reduction="mean").loss(params, X, Y)


def test_sum_of_mse_names_the_sum_convention():
    rng = np.random.default_rng(1)
    net = fg.MLP([3, 4, 2], hidden="tanh", output="identity")
    params = random_params([3, 4, 2], rng)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    grads = net.replace(reduction="sum").gradients(params, X, Y)
    hint = fg.check(net, params, X, Y, grads).tensors["b2"].hint
    assert "analytic = 10 x numerical" in hint and "reduction='sum'" in hint


def test_missing_one_over_m_keeps_its_classic_hint():
    rng = np.random.default_rng(2)
    net = fg.MLP([3, 4, 3], hidden="tanh")
    params = random_params([3, 4, 3], rng)
    X, y = rng.normal(size=(6, 3)), np.arange(6) % 3
    grads = net.replace(reduction="sum").gradients(params, X, y)
    assert fg.check(net, params, X, y, grads).tensors["W2"].hint == (
        "analytic = 6 x numerical, x m = 6: a missing 1/m?"
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_report_header_writes_j_out(reduction):
    net, params, X, Y = make("identity", reduction, 0, l2=0.1)
    text = str(fg.check(net, params, X, Y))
    assert f"objective {net.formula()}" in text
    assert "l2/(2m)" in net.formula()
    assert fg.check(net, params, X, Y).to_dict()["network"]["reduction"] == reduction


def test_bad_reduction_and_weights_are_refused():
    with pytest.raises(ValueError, match="reduction must be one of"):
        fg.MLP([2, 2], reduction="average")
    with pytest.raises(ValueError, match="weights must be 'out_in'"):
        fg.MLP([2, 2], weights="rows")


# the factor from the course's data term to each convention's, from the definitions:
# mse course (1/m) sum 1/2 (z-y)^2, mean (1/(mk)) sum (z-y)^2, sum: sum (z-y)^2
FACTORS = {
    ("identity", "mean"): lambda m, k: 2.0 / k,
    ("identity", "sum"): lambda m, k: 2.0 * m,
    ("sigmoid", "mean"): lambda m, k: 1.0 / k,
    ("sigmoid", "sum"): lambda m, k: float(m),
    ("softmax", "mean"): lambda m, k: 1.0,
    ("softmax", "sum"): lambda m, k: float(m),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target", ["mse", "bce", "ce_soft", "ce_labels"])
@settings(max_examples=8)
@given(data=st.data())
def test_random_networks_in_every_convention_match_their_definition(target, reduction, data):
    case = data.draw(cases(target=target))
    net = case.net.replace(reduction=reduction)
    args = (case.params, case.X_given, case.Y_given, case.layout)
    expected = reference_loss(
        case.sizes,
        case.hidden,
        case.output,
        reduction,
        case.l2,
        case.params,
        case.X,
        case.Y,
        case.masks,
    )
    assert net.loss(*args) == pytest.approx(expected, rel=1e-12, abs=1e-13)
    m, k = case.X.shape[0], case.sizes[-1]
    factor = FACTORS.get((case.output, reduction), lambda m, k: 1.0)(m, k)
    data = naive.gradients(
        case.sizes, case.hidden, case.output, 0.0, case.params, case.X, case.Y, case.masks
    )
    ours = net.gradients(*args)
    for key, value in data.items():
        wanted = factor * value
        if key.startswith("dW"):
            wanted = wanted + case.l2 / m * case.params[key[1:]]
        scale = np.abs(wanted).max() + 1e-300
        assert np.abs(ours[key] - wanted).max() <= 1e-12 * max(scale, 1e-3), key
