"""Per-sample losses computed from the output layer's logits.

Each loss is paired with its output function, so that the pair is computed
from the logits ``z`` in a numerically stable way:

- ``MSE`` (identity output): ``l = 1/2 sum_k (z_k - y_k)^2``
- ``BINARY_CROSS_ENTROPY`` (sigmoid output):
  ``l = sum_k softplus(z_k) - y_k z_k``, which equals
  ``-sum_k y_k log sigmoid(z_k) + (1 - y_k) log(1 - sigmoid(z_k))``
- ``CROSS_ENTROPY`` (softmax output):
  ``l = (sum_k y_k) logsumexp(z) - sum_k y_k z_k``, which is
  ``-log softmax(z)[label]`` for a one-hot ``y``.

For each pair the derivative of ``l`` with respect to the logits is
``(sum_k y_k) * output(z) - y`` (the ``sum_k y_k`` factor only for softmax).
"""

import math

from ._jit import jit
from .activations import sigmoid_pair, softplus, softplus_difference

MSE = 0
BINARY_CROSS_ENTROPY = 1
CROSS_ENTROPY = 2


@jit(entry=False, refcount=False)
def softmax_into(z, out):
    """Write ``softmax(z)`` into ``out`` and return ``logsumexp(z)``."""
    top = z[0]
    for k in range(1, z.shape[0]):
        top = max(top, z[k])
    total = 0.0
    for k in range(z.shape[0]):
        out[k] = math.exp(z[k] - top)
        total += out[k]
    for k in range(z.shape[0]):
        out[k] /= total
    return top + math.log(total)


@jit(entry=False, refcount=False)
def sample_loss(code, z, y, scratch):
    """Return the loss of one sample from its logits ``z`` and target ``y``.

    ``scratch`` is a buffer of the length of ``z`` (used by the softmax).
    """
    total = 0.0
    if code == MSE:
        for k in range(z.shape[0]):
            d = z[k] - y[k]
            total += 0.5 * d * d
    elif code == BINARY_CROSS_ENTROPY:
        for k in range(z.shape[0]):
            total += softplus(z[k]) - y[k] * z[k]
    else:
        lse = softmax_into(z, scratch)
        for k in range(z.shape[0]):
            total += y[k] * (lse - z[k])
    return total


@jit(entry=False, refcount=False)
def output_probabilities(code, z, out):
    """Write the output function of ``z`` (identity, sigmoid or softmax) into ``out``."""
    if code == MSE:
        for k in range(z.shape[0]):
            out[k] = z[k]
    elif code == BINARY_CROSS_ENTROPY:
        for k in range(z.shape[0]):
            out[k] = sigmoid_pair(z[k])[0]
    else:
        softmax_into(z, out)


@jit(entry=False, refcount=False)
def logit_gradient(code, z, y, out):
    """Write ``d loss / d z`` of one sample into ``out``."""
    output_probabilities(code, z, out)
    weight = 1.0
    if code == CROSS_ENTROPY:
        weight = 0.0
        for k in range(y.shape[0]):
            weight += y[k]
    for k in range(z.shape[0]):
        out[k] = weight * out[k] - y[k]


@jit(entry=False, refcount=False)
def bernoulli_gradient(z, y):
    """Return ``sigmoid(z) - y``, binary cross-entropy's ``d loss / d z`` of one output.

    For ``z > 0`` as ``(1 - y) - sigmoid(-z)``: a confident output (``sigmoid(z) = 1 -
    tiny``, ``y = 1``) keeps the tiny value rather than the rounding of ``1 - tiny``.
    """
    s, c = sigmoid_pair(z)
    if not z > 0.0:
        return s - y
    gap = 1.0 - y
    # apart: reassociation would turn (1 - y) - c into (1 - c) - y
    return -c if gap == 0.0 else gap - c


@jit(entry=False, refcount=False)
def loss_difference(code, z, prob, y, dz):
    """Return ``loss(z + dz) - loss(z)`` for one sample, without cancellation.

    ``prob`` is the output function of ``z`` (:func:`output_probabilities`).
    The difference is formed from ``expm1`` and ``log1p`` of the small change
    rather than by subtracting two losses, so it is accurate to rounding
    relative to itself, not relative to the loss; where a large change would
    make those forms overflow or cancel (a confident logit moved by tens),
    it switches to a form that is accurate there.
    """
    total = 0.0
    if code == MSE:
        for k in range(z.shape[0]):
            total += dz[k] * (z[k] - y[k] + 0.5 * dz[k])
        return total
    if code == BINARY_CROSS_ENTROPY:
        # softplus(z) - y z = y softplus(-z) + (1 - y) softplus(z): no term cancels another
        for k in range(z.shape[0]):
            s, c = sigmoid_pair(z[k])
            if y[k] != 0.0:
                total += y[k] * softplus_difference(-z[k], -dz[k], c, s)
            if y[k] != 1.0:
                total += (1.0 - y[k]) * softplus_difference(z[k], dz[k], s, c)
        return total
    return _cross_entropy_difference(z, prob, y, dz)


@jit(entry=False, refcount=False)
def _cross_entropy_difference(z, prob, y, dz):
    """``W (logsumexp(z + dz) - logsumexp(z)) - y.dz`` with ``W = sum_k y_k``.

    Written as ``W log sum_k p_k exp(dz_k - c)`` with ``c = y.dz / W``, the
    targets' own mean shift, so that the target's change cancels exactly
    instead of between two large terms (for one-hot ``y``, ``c`` is the
    target logit's change). ``log1p`` of ``sum_k p_k expm1(dz_k - c)`` while
    that sum stays above ``-1/2`` and finite; otherwise a log-sum-exp of
    ``log p_k + dz_k - c`` with ``log p_k = z_k - logsumexp(z)``.
    """
    n_out = z.shape[0]
    weight = 0.0
    shift = 0.0
    for k in range(n_out):
        weight += y[k]
        shift += y[k] * dz[k]
    if weight == 0.0:
        return 0.0
    shift /= weight
    moved = 0.0
    for k in range(n_out):
        moved += prob[k] * math.expm1(dz[k] - shift)
    if -0.5 <= moved < math.inf:
        return weight * math.log1p(moved)
    top = z[0]
    for k in range(1, n_out):
        top = max(top, z[k])
    norm = 0.0
    for k in range(n_out):
        norm += math.exp(z[k] - top)
    lse = top + math.log(norm)
    peak = -math.inf
    for k in range(n_out):
        peak = max(peak, z[k] - lse + dz[k] - shift)
    total = 0.0
    for k in range(n_out):
        total += math.exp(z[k] - lse + dz[k] - shift - peak)
    return weight * (peak + math.log(total))
