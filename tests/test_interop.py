"""from_torch and torch_gradients against torch's own forward pass and autograd."""

from functools import partial

import numpy as np
import pytest

import fastgrad as fg

torch = pytest.importorskip("torch")
nn = torch.nn

ACTIVATIONS = [nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.Softplus, nn.Identity]
PARAMETRIZED = [
    partial(nn.LeakyReLU, 0.2),
    partial(nn.LeakyReLU, negative_slope=-0.5),
    partial(nn.ELU, alpha=0.5),
    partial(nn.ELU, alpha=2.0),
    partial(nn.Softplus, beta=2.0),
    partial(nn.Softplus, beta=0.5),
]
LOSSES = [nn.CrossEntropyLoss, nn.BCEWithLogitsLoss, nn.MSELoss]


def model_and_batch(activation, loss_class, reduction, seed=0, sizes=(4, 6, 5, 3), batch=7):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layers = []
    for u in range(1, len(sizes)):
        layers.append(nn.Linear(sizes[u - 1], sizes[u]))
        if u < len(sizes) - 1:
            layers.append(activation())
    model = nn.Sequential(*layers).double()
    X = torch.randn(batch, sizes[0], dtype=torch.float64, generator=generator)
    if loss_class is nn.CrossEntropyLoss:
        Y = torch.randint(0, sizes[-1], (batch,), generator=generator)
    elif loss_class is nn.BCEWithLogitsLoss:
        Y = torch.rand(batch, sizes[-1], dtype=torch.float64, generator=generator)
    else:
        Y = torch.randn(batch, sizes[-1], dtype=torch.float64, generator=generator)
    return model, loss_class(reduction=reduction), X, Y


def autograd(model, loss_fn, X, Y):
    model.zero_grad()
    value = loss_fn(model(X), Y)
    value.backward()
    return value.item()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss_class", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS + PARAMETRIZED)
def test_autograd_gradients_check_correct(activation, loss_class, reduction):
    model, loss_fn, X, Y = model_and_batch(activation, loss_class, reduction)
    value = autograd(model, loss_fn, X, Y)
    net, params = fg.from_torch(model, loss_fn)
    grads = fg.torch_gradients(model)
    report = fg.check(net, params, X.numpy(), Y.numpy(), grads, loss=value)
    assert report.verdict in (fg.Verdict.CORRECT, fg.Verdict.ACCEPTABLE), str(report)
    if activation in PARAMETRIZED:
        assert report.verdict == fg.Verdict.CORRECT, str(report)
    assert report.checked == net.n_params
    assert net.loss(params, X.numpy(), Y.numpy()) == pytest.approx(value, rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("activation", [nn.Tanh, *PARAMETRIZED])
@pytest.mark.parametrize("loss_class", LOSSES)
def test_corrupted_entry_is_caught_at_its_index(loss_class, activation):
    model, loss_fn, X, Y = model_and_batch(activation, loss_class, "mean", seed=3)
    autograd(model, loss_fn, X, Y)
    net, params = fg.from_torch(model, loss_fn)
    grads = fg.torch_gradients(model)
    grads["dW2"][3, 1] += 0.05 * np.abs(grads["dW2"]).max()
    report = fg.check(net, params, X.numpy(), Y.numpy(), grads)
    assert report.verdict == fg.Verdict.WRONG
    worst = report.worst(1)[0]
    assert (worst.tensor, worst.index) == ("W2", (3, 1))
    assert [name for name, t in report.tensors.items() if t.verdict.failed] == ["W2"]


def test_from_torch_copies_float64_parameters_in_nn_linear_layout():
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    net, params = fg.from_torch(model, nn.MSELoss())
    assert net.sizes == (3, 5, 2) and net.hidden == ("relu",)
    assert (net.output, net.loss_name, net.reduction) == ("identity", "mse", "mean")
    assert params["W1"].dtype == np.float64 and params["W1"].shape == (5, 3)
    assert np.array_equal(params["W1"], model[0].weight.detach().double().numpy())
    params["W1"][0, 0] = 123.0
    assert model[0].weight[0, 0].item() != 123.0


def test_default_loss_is_cross_entropy_mean():
    net, _ = fg.from_torch(nn.Sequential(nn.Linear(2, 3)))
    assert (net.output, net.loss_name, net.reduction) == ("softmax", "cross_entropy", "mean")


def test_consecutive_linears_have_identity_between():
    net, _ = fg.from_torch(
        nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    )
    assert net.hidden == ("identity", "tanh")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (lambda: nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 2)), r"model\[1\] is GELU"),
        (
            lambda: nn.Sequential(nn.Linear(2, 3, bias=False)),
            r"model\[0\] is a Linear without bias",
        ),
        (
            lambda: nn.Sequential(nn.Linear(2, 3), nn.Softplus(beta=-1.0), nn.Linear(3, 2)),
            r"model\[1\] is Softplus\(beta=-1.0\): hidden activation softplus: its beta must",
        ),
        (
            lambda: nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(float("inf")), nn.Linear(3, 2)),
            r"LeakyReLU\(negative_slope=inf\): hidden activation leaky_relu: its slope must be",
        ),
        (lambda: nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=1)), "ends with Softmax"),
        (lambda: nn.Sequential(nn.Linear(2, 3), nn.Sigmoid()), "ends with Sigmoid"),
        (lambda: nn.Sequential(nn.Tanh(), nn.Linear(2, 3)), "comes before the first Linear"),
        (
            lambda: nn.Sequential(nn.Flatten(), nn.Linear(2, 3)),
            r"model\[0\] is Flatten: give fastgrad X already flat",
        ),
        (
            lambda: nn.Sequential(nn.GELU(), nn.Linear(2, 3)),
            r"model\[0\] is GELU, which fastgrad cannot express",
        ),
        (
            lambda: nn.Sequential(nn.Sequential(nn.Linear(2, 3), nn.GELU()), nn.Linear(3, 2)),
            r"model\[0\]\[1\] is GELU",
        ),
        (
            lambda: nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.ReLU(), nn.Linear(3, 2)),
            "follows another activation",
        ),
        (
            lambda: nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.5), nn.Linear(3, 2)),
            r"model\[2\] is Dropout, which fastgrad cannot express.*dropout_masks",
        ),
        (
            lambda: nn.Sequential(nn.Linear(2, 3), nn.Softplus(threshold=5), nn.Linear(3, 2)),
            r"Softplus\(threshold=5\)",
        ),
        (
            lambda: nn.Sequential(nn.Linear(2, 3), nn.Linear(4, 2)),
            r"model\[1\] takes 4 inputs.*gives 3",
        ),
    ],
)
def test_unsupported_modules_are_named(model, message):
    with pytest.raises(ValueError, match=message):
        fg.from_torch(model())


@pytest.mark.parametrize(
    ("loss_fn", "message"),
    [
        (lambda: nn.NLLLoss(), "NLLLoss, which fastgrad cannot express"),
        (lambda: nn.MSELoss(reduction="none"), "reduction='none'"),
        (lambda: nn.CrossEntropyLoss(label_smoothing=0.1), "label_smoothing"),
        (lambda: nn.CrossEntropyLoss(weight=torch.ones(2)), "weight"),
        (lambda: nn.BCEWithLogitsLoss(pos_weight=torch.ones(2)), "pos_weight"),
        (lambda: nn.CrossEntropyLoss(ignore_index=0), "ignore_index=0"),
    ],
)
def test_unsupported_loss_options_are_named(loss_fn, message):
    with pytest.raises(ValueError, match=message):
        fg.from_torch(nn.Sequential(nn.Linear(2, 2)), loss_fn())


def test_not_a_sequential_is_a_type_error():
    with pytest.raises(TypeError, match="nn.Sequential"):
        fg.from_torch(nn.Linear(2, 2))


def test_gradients_before_backward_are_refused():
    with pytest.raises(ValueError, match=r"W1 .* has no .grad"):
        fg.torch_gradients(nn.Sequential(nn.Linear(2, 2)))


def test_float32_model_checks_with_a_precision_warning_and_matching_loss():
    model, loss_fn, X, Y = model_and_batch(nn.Tanh, nn.CrossEntropyLoss, "mean", seed=1)
    model = model.float()
    X = X.float()
    value = autograd(model, loss_fn, X, Y)
    net, params = fg.from_torch(model, loss_fn)
    grads = fg.torch_gradients(model)
    with pytest.warns(fg.PrecisionWarning):
        report = fg.check(net, params, X.numpy(), Y.numpy(), grads, loss=value)
    assert not report.reasons
    assert report.verdict in (fg.Verdict.ACCEPTABLE, fg.Verdict.SUSPICIOUS, fg.Verdict.CORRECT)


def test_module_parameters_become_hidden_entries():
    model = nn.Sequential(
        nn.Linear(2, 3),
        nn.LeakyReLU(0.2),
        nn.Linear(3, 3),
        nn.ELU(alpha=0.5),
        nn.Linear(3, 3),
        nn.Softplus(beta=2),
        nn.Linear(3, 3),
        nn.LeakyReLU(),
        nn.Linear(3, 2),
    )
    net, _ = fg.from_torch(model)
    assert net.hidden_entries == [
        ("leaky_relu", 0.2),
        ("elu", 0.5),
        ("softplus", 2.0),
        "leaky_relu",
    ]
    assert net.hidden_parameters == (0.2, 0.5, 2.0, 0.01)


def test_softplus_beyond_its_default_threshold_is_accepted():
    model = nn.Sequential(nn.Linear(2, 3), nn.Softplus(threshold=30), nn.Linear(3, 2))
    net, _ = fg.from_torch(model)
    assert net.hidden == ("softplus",)


def test_a_loss_tensor_of_several_values_is_a_value_error_naming_loss():
    model, loss_fn, X, Y = model_and_batch(nn.Tanh, nn.MSELoss, "none")
    net, params = fg.from_torch(model, nn.MSELoss())
    with pytest.raises(ValueError, match=r"loss must be one number .* 21 values"):
        fg.check(net, params, X.numpy(), Y.numpy(), loss=loss_fn(model(X), Y))


@pytest.mark.parametrize(
    "modules",
    [
        lambda: [nn.Identity(), nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)],
        lambda: [nn.Linear(3, 4), nn.Identity(), nn.Tanh(), nn.Linear(4, 2)],
        lambda: [nn.Linear(3, 4), nn.Tanh(), nn.Identity(), nn.Linear(4, 2), nn.Identity()],
    ],
)
def test_identity_modules_anywhere_are_no_ops(modules):
    torch.manual_seed(5)
    model = nn.Sequential(*modules()).double()
    X = torch.randn(6, 3, dtype=torch.float64)
    Y = torch.randint(0, 2, (6,))
    value = autograd(model, nn.CrossEntropyLoss(), X, Y)
    net, params = fg.from_torch(model)
    assert net.hidden == ("tanh",)
    assert net.loss(params, X.numpy(), Y.numpy()) == pytest.approx(value, rel=1e-14)


def test_nested_sequentials_are_read_as_their_modules():
    torch.manual_seed(6)
    block = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2))
    model = nn.Sequential(block, nn.Sequential(nn.Linear(4, 5), nn.Tanh()), nn.Linear(5, 2))
    model = model.double()
    X = torch.randn(6, 3, dtype=torch.float64)
    Y = torch.randint(0, 2, (6,))
    value = autograd(model, nn.CrossEntropyLoss(), X, Y)
    net, params = fg.from_torch(model)
    assert net.hidden_entries == [("leaky_relu", 0.2), "tanh"]
    assert net.loss(params, X.numpy(), Y.numpy()) == pytest.approx(value, rel=1e-14)
    grads = fg.torch_gradients(model)
    assert fg.check(net, params, X.numpy(), Y.numpy(), grads).verdict == fg.Verdict.CORRECT
