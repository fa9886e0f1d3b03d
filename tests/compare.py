"""How the tests compare fastgrad with the naive references, and how closely.

Values are compared tensor by tensor: ``||ours - ref|| <= 1e-12 ||ref||``,
with one allowance. A value that is a sum of terms of both signs which
cancel (a logit gradient ``p - y`` with ``p`` close to ``y``, a pre-activation
near 0, ``softplus(z) - y z`` of a confident prediction) is known in float64
only to about ``u`` times the size of its terms, whatever computes it; there
the bound is a small multiple of ``u`` times that size, which
:func:`rounding_scale` measures. Everywhere else the relative bound decides.
"""

from dataclasses import dataclass

import naive
import numpy as np


def relative_error(ours, ref):
    """``||ours - ref|| / ||ref||``; 0 when both are 0, inf when only ``ref`` is."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    scale = np.linalg.norm(ref)
    error = np.linalg.norm(ours - ref)
    if scale == 0.0:
        return 0.0 if error == 0.0 else np.inf
    return error / scale


def course_difference(a, b):
    """The course's ``||a - b|| / (||a|| + ||b||)``, 0 when both are 0."""
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0.0 else np.linalg.norm(a - b) / scale


EXTENDED = np.longdouble
"""The naive references run in extended precision where the platform has it
(x86: 64-bit significand), so that their own rounding does not count against
fastgrad; elsewhere this is float64."""

RTOL = 1e-12
U = np.finfo(np.float64).eps / 2
SCALE_TOL = (32 if np.finfo(EXTENDED).nmant > 52 else 256) * U
"""Rounding allowance relative to the size of the terms that a value is a sum
of (:func:`rounding_scale`). It matters only where those terms cancel, so that
the result is much smaller than they are; elsewhere ``RTOL`` decides. Measured
over 20000 random networks: fastgrad stays within 4.2 u of it; the float64
naive reference (used where there is no extended precision) within 114 u,
because its ``1 - tanh^2`` and ``s (1 - s)`` are accurate only absolutely."""


@dataclass
class Values:
    """What a network computes on a batch: the objective, every ``Z`` and hidden ``A``,
    the output and the gradients (or, from :func:`rounding_scale`, their sizes)."""

    loss: float
    sample_losses: np.ndarray  # without the L2 term
    Z: list
    A: list  # hidden layers only: A[0] belongs to the first hidden layer
    output: np.ndarray
    grads: dict
    deltas: dict  # {u: dJ/dZ_u} of the data term, (batch, sizes[u]), with the 1/m


def reference(case):
    """The naive reference's values of a case, computed in :data:`EXTENDED` precision."""
    params = {key: np.asarray(value, dtype=EXTENDED) for key, value in case.params.items()}
    X, Y = np.asarray(case.X, dtype=EXTENDED), np.asarray(case.Y, dtype=EXTENDED)
    masks = [np.asarray(mask, dtype=EXTENDED) for mask in case.masks]
    args = (case.sizes, case.hidden, case.output, case.l2, params, X, Y, masks)
    Z, A = naive.forward(case.sizes, case.hidden, params, X, masks)
    return Values(
        loss=float(naive.loss(*args)),
        sample_losses=naive.per_sample_loss(case.output, Z[-1], Y).astype(np.float64),
        Z=[z.astype(np.float64) for z in Z],
        A=[a.astype(np.float64) for a in A[1:]],
        output=naive.output_function(case.output, Z[-1]).astype(np.float64),
        grads={key: value.astype(np.float64) for key, value in naive.gradients(*args).items()},
        deltas={
            u: value.astype(np.float64)
            for u, value in naive.deltas(case.sizes, case.hidden, case.output, *args[4:]).items()
        },
    )


def rounding_scale(case):
    """The size of the terms each computed value is a sum of, as :class:`Values`.

    Every value here is a sum of terms of both signs (``W a + b``, ``p - y``,
    ``softplus(z) - y z``, ``delta W``, ``delta^T A``). Where they cancel, any
    float64 computation leaves an error of about ``u`` times the sum of their
    sizes, not of the result. These sums are formed by running the network in
    absolute values, each layer's size including what it inherits from the
    layer before.
    """
    Z, A = naive.forward(case.sizes, case.hidden, case.params, case.X, case.masks)
    m, n_layers = case.X.shape[0], len(case.sizes) - 1
    W = {layer: np.abs(case.params[f"W{layer}"]) for layer in range(1, n_layers + 1)}
    b = {layer: np.abs(np.ravel(case.params[f"b{layer}"])) for layer in range(1, n_layers + 1)}
    slopes = [
        np.abs(naive.activation_derivative(name, z))
        for name, z in zip(case.hidden, Z[:-1], strict=True)
    ]
    a_sizes, z_sizes = [np.abs(case.X)], []
    for layer in range(1, n_layers + 1):
        z_sizes.append(a_sizes[-1] @ W[layer].T + b[layer])
        if layer < n_layers:
            mask = np.abs(case.masks[layer - 1])
            a_sizes.append(mask * slopes[layer - 1] * z_sizes[-1] + np.abs(A[layer]))

    logits, spread = Z[-1], z_sizes[-1]
    out = np.abs(naive.output_function(case.output, logits))
    Y = np.abs(case.Y)
    weight = case.Y.sum(axis=1, keepdims=True) if case.output == "softmax" else np.ones((m, 1))
    if case.output == "identity":
        out_size = spread
    else:  # a change dz moves sigmoid and softmax outputs by at most p * 2 max|dz|
        out_size = out * (1.0 + 2.0 * spread.max(axis=1, keepdims=True))
    per_sample = np.sum((1.0 + Y + weight * out) * (spread + Y) + 1.0, axis=1)
    if case.output == "softmax":
        top = logits.max(axis=1, keepdims=True)
        log_sum_exp = top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
        per_sample += np.ravel(weight * np.abs(log_sum_exp))
    penalty = sum(np.sum(W[layer] ** 2) for layer in W)
    loss = per_sample.mean() + case.l2 / (2 * m) * penalty

    delta = (weight * out_size + Y) / m
    grads, deltas = {}, {}
    for layer in range(n_layers, 0, -1):
        deltas[layer] = delta
        grads[f"dW{layer}"] = delta.T @ a_sizes[layer - 1] + case.l2 / m * W[layer]
        grads[f"db{layer}"] = delta.sum(axis=0)
        if layer > 1:
            delta = (delta @ W[layer]) * np.abs(case.masks[layer - 2]) * slopes[layer - 2]
    return Values(
        loss=loss,
        sample_losses=per_sample,
        Z=z_sizes,
        A=a_sizes[1:],
        output=out_size,
        grads=grads,
        deltas=deltas,
    )


def assert_close(name, ours, ref, scale, rtol=RTOL):
    """``||ours - ref|| <= rtol ||ref|| + SCALE_TOL ||scale||``."""
    ours, ref = np.ravel(ours), np.ravel(ref)
    error = np.linalg.norm(ours - ref)
    allowed = rtol * np.linalg.norm(ref) + SCALE_TOL * np.linalg.norm(scale)
    assert error <= allowed, (
        f"{name}: |ours - ref| = {error:.3e} > {allowed:.3e} "
        f"(relative {relative_error(ours, ref):.3e})"
    )
