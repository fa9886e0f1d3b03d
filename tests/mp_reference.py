"""A network's loss and centered differences in 50 significant digits, with mpmath.

The oracle for large steps, where float64 evaluations of ``J(theta +- eps e_i)``
overflow or cancel: every parameter, input and step converts to mpmath
exactly, the perturbed parameter ``theta_i +- eps`` is formed exactly, and
everything is evaluated from the definitions in DESIGN.md with 50 digits;
only the final centered difference is rounded to float64. Slow and obvious,
like ``naive.py``; nothing here is shared with fastgrad.
"""

import mpmath
import numpy as np

DIGITS = 50
DEFAULTS = {"leaky_relu": 0.01, "elu": 1.0, "softplus": 1.0}


def activation(entry, x):
    """``phi(x)``; ``entry`` a name or ``(name, parameter)``, the parameter taken exactly."""
    if isinstance(entry, str):
        name, param = entry, DEFAULTS.get(entry)
    else:
        name, param = entry
    param = None if param is None else mpmath.mpf(float(param))
    if name == "identity":
        return x
    if name == "relu":
        return x if x > 0 else mpmath.mpf(0)
    if name == "leaky_relu":
        return x if x > 0 else param * x
    if name == "tanh":
        return mpmath.tanh(x)
    if name == "sigmoid":
        return 1 / (1 + mpmath.exp(-x))
    if name == "elu":
        return x if x > 0 else param * mpmath.expm1(x)
    if name == "softplus":
        return mpmath.log1p(mpmath.exp(param * x)) / param
    raise KeyError(name)


def sample_loss(output, z, y):
    if output == "identity":
        return sum((a - b) ** 2 for a, b in zip(z, y, strict=True)) / 2
    if output == "sigmoid":
        # -y log s - (1 - y) log(1 - s) = softplus(z) - y z
        return sum(mpmath.log1p(mpmath.exp(a)) - b * a for a, b in zip(z, y, strict=True))
    if output == "softmax":
        lse = mpmath.log(sum(mpmath.exp(a) for a in z))
        return sum(y) * lse - sum(a * b for a, b in zip(z, y, strict=True))
    raise KeyError(output)


def _mp(array):
    return [[mpmath.mpf(float(v)) for v in row] for row in np.atleast_2d(array)]


def loss(sizes, hidden, output, l2, params, X, Y, masks, shift=None):
    """``J`` in 50 digits; ``shift = (name, flat_index, delta)`` adds ``delta`` to one entry."""
    with mpmath.workdps(DIGITS):
        layers = {}
        for name, value in params.items():
            flat = [mpmath.mpf(float(v)) for v in np.ravel(value)]
            if shift is not None and shift[0] == name:
                flat[shift[1]] += mpmath.mpf(shift[2])
            layers[name] = flat
        n_layers = len(sizes) - 1
        total = mpmath.mpf(0)
        for x, y, b in zip(_mp(X), _mp(Y), range(len(X)), strict=True):
            a = x
            for u in range(1, n_layers + 1):
                W, bias = layers[f"W{u}"], layers[f"b{u}"]
                n_in = sizes[u - 1]
                z = [
                    bias[k] + mpmath.fsum(W[k * n_in + j] * a[j] for j in range(n_in))
                    for k in range(sizes[u])
                ]
                if u < n_layers:
                    mask = masks[u - 1][b]
                    a = [
                        activation(hidden[u - 1], v) * mpmath.mpf(float(m))
                        for v, m in zip(z, mask, strict=True)
                    ]
            total += sample_loss(output, z, y)
        m = len(X)
        penalty = mpmath.fsum(w * w for u in range(1, n_layers + 1) for w in layers[f"W{u}"])
        return total / m + mpmath.mpf(float(l2)) / (2 * m) * penalty


def centered_difference(sizes, hidden, output, l2, params, X, Y, masks, name, flat_index, epsilon):
    """``(J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)`` in 50 digits, rounded to float."""
    args = (sizes, hidden, output, l2, params, X, Y, masks)
    with mpmath.workdps(DIGITS):
        eps = mpmath.mpf(float(epsilon))
        up = loss(*args, shift=(name, flat_index, eps))
        down = loss(*args, shift=(name, flat_index, -eps))
        return float((up - down) / (2 * eps))


def centered_differences(sizes, hidden, output, l2, params, X, Y, masks, epsilon):
    """Every entry's 50-digit centered difference, flat in the order W1, b1, W2, ..."""
    out = []
    for u in range(1, len(sizes)):
        for name in (f"W{u}", f"b{u}"):
            for i in range(np.size(params[name])):
                out.append(
                    centered_difference(
                        sizes, hidden, output, l2, params, X, Y, masks, name, i, epsilon
                    )
                )
    return np.array(out)
