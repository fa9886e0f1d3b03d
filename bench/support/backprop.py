"""One plain numpy forward and backward pass of a batch: the unit every check time is divided by.

A check's time over the time of one backprop of the same network and batch,
measured in the same process, is a figure that compares across machines (both
scale with the machine's matrix-product rate). The pass is written the way a
course writes it: ``Z = A W^T + b`` layer by layer, then the gradients from the
output back, with the loss and its gradient as fastgrad defines them (mean over
the batch, no L2).
"""

import math
import time

import numpy as np

BACKPROP_ROUNDS = 5
"""Fewest rounds of a backprop timing per thread setting; the best counts (a shared
machine only slows a run down)."""
BACKPROP_SECONDS = 0.2
"""Rounds continue (up to :data:`BACKPROP_MAX_ROUNDS`) until this many seconds have passed,
so that a pass of a fraction of a millisecond gets enough chances to run undisturbed."""
BACKPROP_MAX_ROUNDS = 200


def forward_activation(
    name, z, refusal="the numpy backprop implements relu, tanh, sigmoid, elu and softplus"
):
    """Return the activation ``name`` of ``z``; raise ``ValueError`` (``refusal``) for another."""
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * z))
    if name == "elu":
        return np.where(z > 0.0, z, np.expm1(np.minimum(z, 0.0)))
    if name == "softplus":
        return np.logaddexp(0.0, z)
    raise ValueError(f"{refusal}, not {name!r}")


def _derivative(name, z, a):
    if name == "relu":
        return (z > 0.0).astype(np.float64)
    if name == "tanh":
        return 1.0 - a * a
    if name == "elu":
        return np.where(z > 0.0, 1.0, a + 1.0)
    if name == "softplus":
        return 0.5 * (1.0 + np.tanh(0.5 * z))
    return a * (1.0 - a)


def numpy_backprop(problem):
    """Return ``(J, {"dW1": ..., "db1": ..., ...})`` of a problem's batch, in plain numpy.

    Parameters
    ----------
    problem : workloads.Problem
        Its network's hidden activation is relu, tanh, sigmoid, elu or softplus and its output
        softmax (integer labels) or sigmoid (binary labels).
    """
    w = problem.workload
    n_layers = len(w.sizes) - 1
    params, X, Y = problem.params, problem.X, problem.Y
    m = X.shape[0]
    acts, pres = [X], []
    for layer in range(1, n_layers + 1):
        Z = acts[-1] @ params[f"W{layer}"].T + params[f"b{layer}"]
        pres.append(Z)
        if layer < n_layers:
            acts.append(forward_activation(w.hidden, Z))
    if w.output == "softmax":
        shifted = Z - Z.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        loss = -(shifted[np.arange(m), Y] - np.log(total[:, 0])).sum() / m
        dZ = exp / total
        dZ[np.arange(m), Y] -= 1.0
    elif w.output == "sigmoid":
        T = Y.reshape(Z.shape)
        loss = (np.maximum(Z, 0.0) - Z * T + np.log1p(np.exp(-np.abs(Z)))).sum() / m
        dZ = forward_activation("sigmoid", Z) - T
    else:
        raise ValueError(
            f"the numpy backprop implements softmax and sigmoid outputs, not {w.output!r}"
        )
    dZ /= m
    grads = {}
    for layer in range(n_layers, 0, -1):
        grads[f"dW{layer}"] = dZ.T @ acts[layer - 1]
        grads[f"db{layer}"] = dZ.sum(axis=0)
        if layer > 1:
            dA = dZ @ params[f"W{layer}"]
            dZ = dA * _derivative(w.hidden, pres[layer - 2], acts[layer - 1])
    return loss, grads


def backprop_seconds(problem, rounds=BACKPROP_ROUNDS):
    """Return the best time of :func:`numpy_backprop` over at least ``rounds`` calls per setting.

    The first call, untimed, is checked against fastgrad's ``net.gradients``
    (:func:`assert_matches_fastgrad`), so that the unit every figure is
    divided by is a correct backprop. The calls alternate between numpy's
    BLAS settings of :func:`baselines.thread_settings` (default threads and,
    with threadpoolctl, one thread): on a loaded machine a product whose BLAS
    threads wait for each other was measured 100x slower than on one thread.
    """
    from .baselines import thread_settings

    assert_matches_fastgrad(problem)
    settings = list(thread_settings("numpy").values())
    best, started, done = math.inf, time.perf_counter(), 0
    while done < rounds or (
        time.perf_counter() - started < BACKPROP_SECONDS and done < BACKPROP_MAX_ROUNDS
    ):
        done += 1
        for setting in settings:
            with setting():
                call = time.perf_counter()
                numpy_backprop(problem)
                best = min(best, time.perf_counter() - call)
    return best


def assert_matches_fastgrad(problem, rtol=1e-10):
    """Raise ``AssertionError`` unless the numpy pass agrees with ``net.loss``/``net.gradients``."""
    __tracebackhide__ = True
    loss, grads = numpy_backprop(problem)
    theirs = problem.net.gradients(problem.params, problem.X, problem.Y)
    np.testing.assert_allclose(loss, problem.loss(), rtol=rtol)
    for name, value in grads.items():
        scale = np.abs(theirs[name]).max() + np.finfo(np.float64).tiny
        np.testing.assert_allclose(value, theirs[name], rtol=rtol, atol=rtol * scale, err_msg=name)
