"""Forward and backward passes of a dense network, on flat arrays.

The network is described by integer arrays, indexed by *node layer*
``u = 0 .. L`` (``u = 0`` is the input, ``u = L`` the logits):

``sizes[u]``
    number of units of node layer ``u``.
``codes[u]``
    activation code of node layer ``u`` (``codes[0]`` and ``codes[L]`` are
    unused: the output function belongs to the loss).
``w_off[u]``, ``b_off[u]``
    offsets in ``theta`` of the weight (``sizes[u] x sizes[u-1]``, row-major)
    and bias (``sizes[u]``) that produce node layer ``u``, for ``u >= 1``.
``node_off[u]``
    offset of node layer ``u``'s ``batch x sizes[u]`` block in the per-unit
    buffers ``acts``, ``pre`` and ``masks``; ``node_off[L + 1]`` is their
    length.

``acts`` holds the activations ``A_u`` (``A_0 = X``, filled by the caller),
``pre`` the pre-activations ``Z_u`` for ``u >= 1``, and ``masks`` the fixed
dropout multipliers of the hidden layers (``0`` or ``1 / (1 - p)``; all ones
without dropout): ``A_u = phi_u(Z_u) * M_u``. The passes take these arrays
as one :class:`~fastgrad.kernels.structures.Network`.
"""

import numba
import numpy as np

from ._jit import jit
from .activations import activate, derivative
from .losses import logit_gradient, output_probabilities, sample_loss


@jit()
def node_block(buffer, node_off, sizes, u):
    """Return node layer ``u``'s ``(batch, sizes[u])`` view of a per-unit buffer."""
    start = node_off[u]
    stop = node_off[u + 1]
    return buffer[start:stop].reshape(((stop - start) // sizes[u], sizes[u]))


@jit()
def weight_view(theta, w_off, sizes, u):
    """Return the ``(sizes[u], sizes[u - 1])`` weight producing node layer ``u``."""
    n_out = sizes[u]
    n_in = sizes[u - 1]
    return theta[w_off[u] : w_off[u] + n_out * n_in].reshape((n_out, n_in))


@jit()
def _forward_rows(net, u, first, last):
    """Compute node layer ``u`` for samples ``first:last``."""
    sizes = net.sizes
    weight = weight_view(net.theta, net.w_off, sizes, u)
    bias = net.theta[net.b_off[u] : net.b_off[u] + sizes[u]]
    a_in = node_block(net.acts, net.node_off, sizes, u - 1)
    z_out = node_block(net.pre, net.node_off, sizes, u)
    hidden = u < sizes.shape[0] - 1
    a_out = node_block(net.acts, net.node_off, sizes, u)
    mask = node_block(net.masks, net.node_off, sizes, u)
    code = net.codes[u]
    for b in range(first, last):
        for k in range(sizes[u]):
            total = bias[k]
            for j in range(sizes[u - 1]):
                total += weight[k, j] * a_in[b, j]
            z_out[b, k] = total
            if hidden:
                a_out[b, k] = activate(code, total) * mask[b, k]


@jit()
def forward(net):
    """Fill ``net.pre`` with every ``Z_u`` and ``net.acts`` with every hidden ``A_u``.

    ``net`` is a :class:`~fastgrad.kernels.structures.Network` whose
    ``acts`` block 0 holds the input batch.
    """
    batch = (net.node_off[1] - net.node_off[0]) // net.sizes[0]
    for u in range(1, net.sizes.shape[0]):
        _forward_rows(net, u, 0, batch)


@jit(parallel=True)
def forward_parallel(net, lanes):
    """:func:`forward` with the samples of each layer split over ``lanes`` threads."""
    batch = (net.node_off[1] - net.node_off[0]) // net.sizes[0]
    for u in range(1, net.sizes.shape[0]):
        for lane in numba.prange(lanes):
            _forward_rows(net, u, lane * batch // lanes, (lane + 1) * batch // lanes)


@jit()
def sample_losses(pre, node_off, sizes, targets, loss_code, out):
    """Write each sample's loss (from the logits in ``pre``) into ``out``."""
    logits = node_block(pre, node_off, sizes, sizes.shape[0] - 1)
    scratch = np.empty(logits.shape[1])
    for b in range(logits.shape[0]):
        out[b] = sample_loss(loss_code, logits[b], targets[b], scratch)


@jit()
def squared_weight_norm(theta, w_off, sizes):
    """Return the sum over layers of the squared Frobenius norms of the weights."""
    total = 0.0
    for u in range(1, sizes.shape[0]):
        start = w_off[u]
        for t in range(start, start + sizes[u] * sizes[u - 1]):
            total += theta[t] * theta[t]
    return total


@jit()
def _output_delta(pre, node_off, sizes, targets, loss_code, delta):
    """Write ``d J / d Z_L`` (the data term, ``1/m`` included) into ``delta``."""
    n_layers = sizes.shape[0] - 1
    batch = targets.shape[0]
    logits = node_block(pre, node_off, sizes, n_layers)
    for b in range(batch):
        logit_gradient(loss_code, logits[b], targets[b], delta[b, : sizes[n_layers]])
        for k in range(sizes[n_layers]):
            delta[b, k] /= batch


@jit()
def _weight_rows(net, l2, grad, delta, u, first, last):
    """Write rows ``first:last`` of ``dW_u`` and ``db_u`` from ``delta = dJ/dZ_u``."""
    sizes = net.sizes
    batch = delta.shape[0]
    weight = weight_view(net.theta, net.w_off, sizes, u)
    d_weight = weight_view(grad, net.w_off, sizes, u)
    d_bias = grad[net.b_off[u] : net.b_off[u] + sizes[u]]
    a_in = node_block(net.acts, net.node_off, sizes, u - 1)
    decay = l2 / batch
    for k in range(first, last):
        d_bias[k] = 0.0
        for j in range(sizes[u - 1]):
            d_weight[k, j] = decay * weight[k, j]
        for b in range(batch):
            d = delta[b, k]
            d_bias[k] += d
            for j in range(sizes[u - 1]):
                d_weight[k, j] += d * a_in[b, j]


@jit()
def _delta_rows(net, delta, below, u, first, last):
    """Write ``dJ/dZ_{u-1}`` of samples ``first:last`` into ``below``."""
    sizes = net.sizes
    weight = weight_view(net.theta, net.w_off, sizes, u)
    z_in = node_block(net.pre, net.node_off, sizes, u - 1)
    mask = node_block(net.masks, net.node_off, sizes, u - 1)
    code = net.codes[u - 1]
    n_in = sizes[u - 1]
    for b in range(first, last):
        for j in range(n_in):
            below[b, j] = 0.0
        for k in range(sizes[u]):
            d = delta[b, k]
            for j in range(n_in):
                below[b, j] += d * weight[k, j]
        for j in range(n_in):
            below[b, j] *= mask[b, j] * derivative(code, z_in[b, j])


@jit()
def backward(net, targets, loss_code, l2, grad):
    """Write the gradient of ``J`` into ``grad`` (laid out like ``net.theta``).

    ``J = (1/m) sum_b loss_b + l2 / (2m) sum_u ||W_u||^2`` with ``m`` the
    batch size; ``net`` must have been through :func:`forward`.
    """
    batch = targets.shape[0]
    delta = np.empty((batch, np.max(net.sizes)))
    below = np.empty((batch, np.max(net.sizes)))
    _output_delta(net.pre, net.node_off, net.sizes, targets, loss_code, delta)
    for u in range(net.sizes.shape[0] - 1, 0, -1):
        _weight_rows(net, l2, grad, delta, u, 0, net.sizes[u])
        if u > 1:
            _delta_rows(net, delta, below, u, 0, batch)
            delta, below = below, delta


@jit(parallel=True)
def backward_parallel(net, targets, loss_code, l2, grad, lanes):
    """:func:`backward` with units (for ``dW``) and samples (for ``dZ``) split over ``lanes``."""
    batch = targets.shape[0]
    delta = np.empty((batch, np.max(net.sizes)))
    below = np.empty((batch, np.max(net.sizes)))
    _output_delta(net.pre, net.node_off, net.sizes, targets, loss_code, delta)
    for u in range(net.sizes.shape[0] - 1, 0, -1):
        n_out = net.sizes[u]
        for lane in numba.prange(lanes):
            _weight_rows(
                net, l2, grad, delta, u, lane * n_out // lanes, (lane + 1) * n_out // lanes
            )
        if u > 1:
            for lane in numba.prange(lanes):
                _delta_rows(
                    net, delta, below, u, lane * batch // lanes, (lane + 1) * batch // lanes
                )
            delta, below = below, delta


@jit()
def output_batch(pre, node_off, sizes, loss_code, out):
    """Write the output function (identity, sigmoid or softmax) of every sample's logits."""
    logits = node_block(pre, node_off, sizes, sizes.shape[0] - 1)
    for b in range(logits.shape[0]):
        output_probabilities(loss_code, logits[b], out[b])
