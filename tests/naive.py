"""Slow, obvious references that fastgrad's kernels are tested against.

Plain numpy, written from the formulas in DESIGN.md and nothing else of
fastgrad's: a network is given by its sizes, activation names, output name,
l2, and explicit dropout masks; data are rows. A hidden activation is a name
or a ``(name, parameter)`` pair: leaky relu's slope, elu's alpha, softplus'
beta (torch's definitions).
"""

import numpy as np

DEFAULTS = {"leaky_relu": 0.01, "elu": 1.0, "softplus": 1.0}


def split(entry):
    """Return ``(name, parameter)`` of a hidden entry; the default parameter for a name."""
    if isinstance(entry, str):
        return entry, DEFAULTS.get(entry)
    return entry[0], entry[1]


def kinked(entry):
    """Whether the activation's slope jumps at 0."""
    name, param = split(entry)
    return name == "relu" or (name in ("leaky_relu", "elu") and param != 1.0)


def activation(entry, z):
    name, param = split(entry)
    if name == "identity":
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, param * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "elu":
        return np.where(z > 0, z, param * (np.exp(np.minimum(z, 0.0)) - 1.0))
    if name == "softplus":
        bz = param * z
        return (np.log1p(np.exp(-np.abs(bz))) + np.maximum(bz, 0.0)) / param
    raise KeyError(name)


def activation_derivative(entry, z):
    name, param = split(entry)
    if name == "identity":
        return np.ones_like(z)
    if name == "relu":
        return (z > 0).astype(float)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, param)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 - s)
    if name == "elu":
        return np.where(z > 0, 1.0, param * np.exp(np.minimum(z, 0.0)))
    if name == "softplus":
        e = np.exp(-np.abs(param * z))  # sigmoid(beta z), without overflow
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    raise KeyError(name)


def forward(sizes, hidden, params, X, masks):
    """Return the list of pre-activations and the list of activations (A0 = X)."""
    n_layers = len(sizes) - 1
    A = [X]
    Z = []
    for layer in range(1, n_layers + 1):
        W = params[f"W{layer}"]
        b = np.reshape(params[f"b{layer}"], -1)
        z = A[-1] @ W.T + b
        Z.append(z)
        if layer < n_layers:
            A.append(activation(hidden[layer - 1], z) * masks[layer - 1])
    return Z, A


def output_function(output, logits):
    """The network's output from its logits (rows): identity, sigmoid or softmax."""
    if output == "identity":
        return logits
    if output == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    if output == "softmax":
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise KeyError(output)


def per_sample_loss(output, logits, Y):
    if output == "identity":
        return 0.5 * np.sum((logits - Y) ** 2, axis=1)
    if output == "sigmoid":
        # log sigmoid(z) = -log(1 + exp(-z)), written with logaddexp to stay finite
        log_p = -np.logaddexp(0.0, -logits)
        log_not_p = -np.logaddexp(0.0, logits)
        return -np.sum(Y * log_p + (1.0 - Y) * log_not_p, axis=1)
    if output == "softmax":
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -np.sum(Y * log_softmax, axis=1)
    raise KeyError(output)


def loss(sizes, hidden, output, l2, params, X, Y, masks):
    Z, _ = forward(sizes, hidden, params, X, masks)
    m = X.shape[0]
    penalty = sum(np.sum(params[f"W{k}"] ** 2) for k in range(1, len(sizes)))
    return per_sample_loss(output, Z[-1], Y).mean() + l2 / (2 * m) * penalty


def deltas(sizes, hidden, output, params, X, Y, masks):
    """Return ``{u: dJ/dZ_u}`` of the data term for every layer, each ``(batch, sizes[u])``.

    ``J`` is the mean over the batch, so row ``b`` is ``(1/m) dloss_b / dZ_u[b]``.
    """
    n_layers = len(sizes) - 1
    m = X.shape[0]
    Z, _ = forward(sizes, hidden, params, X, masks)
    logits = Z[-1]
    if output == "identity":
        dz = logits - Y
    elif output == "sigmoid":
        dz = 1.0 / (1.0 + np.exp(-logits)) - Y
    else:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        dz = (e / e.sum(axis=1, keepdims=True)) * Y.sum(axis=1, keepdims=True) - Y
    out = {n_layers: dz / m}
    for layer in range(n_layers, 1, -1):
        da = out[layer] @ params[f"W{layer}"]
        out[layer - 1] = (
            da * masks[layer - 2] * activation_derivative(hidden[layer - 2], Z[layer - 2])
        )
    return out


def gradients(sizes, hidden, output, l2, params, X, Y, masks):
    """Backpropagation written out layer by layer; returns dW1, db1, ..."""
    m = X.shape[0]
    _, A = forward(sizes, hidden, params, X, masks)
    grads = {}
    for layer, dz in deltas(sizes, hidden, output, params, X, Y, masks).items():
        W = params[f"W{layer}"]
        grads[f"dW{layer}"] = dz.T @ A[layer - 1] + l2 / m * W
        grads[f"db{layer}"] = dz.sum(axis=0).reshape(np.shape(params[f"b{layer}"]))
    return grads


def numerical_gradient(sizes, hidden, output, l2, params, X, Y, masks, epsilon, dtype=np.float64):
    """Centered differences, one parameter at a time, full forward passes.

    The difference is summed sample by sample, ``sum_b (l_b(+) - l_b(-))``,
    which loses less to cancellation than subtracting two means. With
    ``dtype=np.longdouble`` (80-bit on x86) everything, the step included,
    is computed in extended precision: a reference about 2000x more precise
    than float64.
    """
    params = {key: np.asarray(value, dtype=dtype) for key, value in params.items()}
    X, Y = np.asarray(X, dtype=dtype), np.asarray(Y, dtype=dtype)
    masks = [np.asarray(mask, dtype=dtype) for mask in masks]
    epsilon = dtype(epsilon)
    l2 = dtype(l2)
    m = X.shape[0]
    out = {}
    for name in [f"{kind}{k}" for k in range(1, len(sizes)) for kind in ("W", "b")]:
        base = params[name]
        grad = np.zeros(base.shape, dtype=dtype)
        for index in np.ndindex(*base.shape):
            values = []
            for sign in (1.0, -1.0):
                trial = dict(params)
                perturbed = base.copy()
                perturbed[index] += sign * epsilon
                trial[name] = perturbed
                Z, _ = forward(sizes, hidden, trial, X, masks)
                values.append(per_sample_loss(output, Z[-1], Y))
            diff = np.sum(values[0] - values[1]) / m
            if name.startswith("W"):
                diff += l2 / (2 * m) * ((base[index] + epsilon) ** 2 - (base[index] - epsilon) ** 2)
            grad[index] = diff / (2 * epsilon)
        out["d" + name] = grad.astype(np.float64)
    return out


def one_hot(labels, n):
    out = np.zeros((len(labels), n))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def one_sided(sizes, hidden, output, params, X, Y, masks, epsilon, dtype=np.float64):
    """Per entry and sample: the loss changes at theta +- eps e_i and the kinks crossed.

    Returns ``(plus, minus, crossed_plus, crossed_minus)``, each ``(n_params,
    batch)`` in the flat order W1 (row-major), b1, W2, ...: ``plus[i, b] =
    loss_b(theta + eps e_i) - loss_b(theta)``, ``minus`` the same at ``-eps``,
    and the number of kinked units (:func:`kinked`, kept by dropout) whose
    pre-activation is on the other side of 0 than at theta.
    """
    params = {key: np.asarray(value, dtype=dtype) for key, value in params.items()}
    X, Y = np.asarray(X, dtype=dtype), np.asarray(Y, dtype=dtype)
    masks = [np.asarray(mask, dtype=dtype) for mask in masks]
    epsilon = dtype(epsilon)

    def evaluate(trial):
        Z, _ = forward(sizes, hidden, trial, X, masks)
        sides = [
            (Z[k] > 0) & (masks[k] != 0) if kinked(hidden[k]) else None
            for k in range(len(sizes) - 2)
        ]
        return per_sample_loss(output, Z[-1], Y), sides

    base_loss, base_sides = evaluate(params)
    rows = {key: [] for key in ("plus", "minus", "crossed_plus", "crossed_minus")}
    for name in [f"{kind}{k}" for k in range(1, len(sizes)) for kind in ("W", "b")]:
        base = params[name]
        for index in np.ndindex(*base.shape):
            for sign, key in ((1.0, "plus"), (-1.0, "minus")):
                trial = dict(params)
                perturbed = base.copy()
                perturbed[index] += sign * epsilon
                trial[name] = perturbed
                values, sides = evaluate(trial)
                crossed = np.zeros(X.shape[0], dtype=np.int64)
                for k, side in enumerate(sides):
                    if side is not None:
                        kept = masks[k] != 0
                        crossed += np.sum((side != base_sides[k]) & kept, axis=1)
                rows[key].append(values - base_loss)
                rows["crossed_" + key].append(crossed)
    return tuple(np.array(rows[key]) for key in ("plus", "minus", "crossed_plus", "crossed_minus"))
