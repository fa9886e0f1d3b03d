"""Random networks and batches for the checker's tests."""

import naive
import numpy as np

import fastgrad as fg

HIDDEN = ("identity", "relu", "leaky_relu", "tanh", "sigmoid", "elu", "softplus")
PARAMETRIZED = (
    ("leaky_relu", 0.2),
    ("leaky_relu", -0.3),
    ("elu", 0.5),
    ("elu", 2.0),
    ("softplus", 3.0),
)
"""Hidden entries with a parameter other than the default, torch's ``LeakyReLU(0.2)`` ..."""
ENTRIES = HIDDEN + PARAMETRIZED
"""Every activation, then the parametrized entries."""
OUTPUTS = ("identity", "sigmoid", "softmax")


def random_params(sizes, rng, scale=1.0, bias=0.1):
    """Weights normal with std ``scale / sqrt(n_in)``, biases normal with std ``bias``."""
    params = {}
    for layer in range(1, len(sizes)):
        n_in, n_out = sizes[layer - 1], sizes[layer]
        params[f"W{layer}"] = rng.normal(size=(n_out, n_in)) * scale / np.sqrt(n_in)
        params[f"b{layer}"] = rng.normal(size=n_out) * bias
    return params


def random_targets(output, batch, n_out, rng, labels=False):
    """Targets fitting an output: labels or one-hot for softmax, [0, 1] for sigmoid."""
    if output == "softmax":
        y = rng.integers(0, n_out, batch)
        if labels:
            return y
        out = np.zeros((batch, n_out))
        out[np.arange(batch), y] = 1.0
        return out
    if output == "sigmoid":
        return rng.random((batch, n_out))
    return rng.normal(size=(batch, n_out))


def case(
    sizes, hidden="tanh", output="softmax", *, batch=7, seed=0, l2=0.0, dropout=None, scale=1.0
):
    """Return ``(net, params, X, Y)`` for a random network and batch."""
    rng = np.random.default_rng(seed)
    net = fg.MLP(sizes, hidden=hidden, output=output, l2=l2, dropout=dropout, dropout_seed=seed)
    params = random_params(sizes, rng, scale=scale)
    X = rng.normal(size=(batch, sizes[0]))
    Y = random_targets(output, batch, sizes[-1], rng)
    return net, params, X, Y


def blank_row_at_zero_biases():
    """``(net, params, X, y)``: a relu network at zero biases whose sample 5 is all zeros.

    Every first-layer unit sits on its kink in that sample, and moving one of
    them moves units of the next layer too.
    """
    net = fg.MLP([20, 16, 8, 4])
    params = net.init("he_normal", seed=0)
    X = np.random.default_rng(0).normal(size=(32, 20))
    X[5] = 0.0
    y = np.arange(32) % 4
    return net, params, X, y


def naive_args(net, X):
    """Arguments the naive references take for a network: sizes, hidden, output, l2, masks."""
    return net.sizes, net.hidden_entries, net.output, net.l2, net.dropout_masks(X.shape[0])


def naive_flat(net, params, X, Y, epsilon, dtype=np.float64):
    """The naive loop's centered differences, flat in fastgrad's parameter order.

    With ``dtype=np.longdouble`` in extended precision (:func:`extended_flat`).
    """
    sizes, hidden, output, l2, masks = naive_args(net, X)
    grads = naive.numerical_gradient(
        sizes, hidden, output, l2, params, X, Y, masks, epsilon, dtype=dtype
    )
    return np.concatenate([grads["d" + name].ravel() for name in net.packing.names])


def extended_flat(net, params, X, Y, epsilon):
    """:func:`naive_flat` in 80-bit long double, about 2000x more precise than float64."""
    return naive_flat(net, params, X, Y, epsilon, dtype=np.longdouble)
