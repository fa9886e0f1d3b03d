"""Random networks and batches for the checker's tests."""

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


def naive_args(net, X):
    """Arguments the naive references take for a network: sizes, hidden, output, l2, masks."""
    return net.sizes, net.hidden_entries, net.output, net.l2, net.dropout_masks(X.shape[0])
