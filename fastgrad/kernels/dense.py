"""Forward and backward passes of a dense network, on flat arrays.

The network is described by integer arrays, indexed by *node layer*
``u = 0 .. L`` (``u = 0`` is the input, ``u = L`` the logits):

``sizes[u]``
    number of units of node layer ``u``.
``codes[u]``
    activation code of node layer ``u`` (``codes[0]`` and ``codes[L]`` are
    unused: the output function belongs to the loss).
``act_params[u]``
    the parameter of that activation (float64; leaky relu's slope, elu's
    alpha, softplus' beta), unused where ``codes[u]`` has none.
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
without dropout): ``A_u = phi_u(Z_u) * M_u``.

The passes themselves (:mod:`fastgrad._passes`) run their matrix products
through numpy's BLAS; what is compiled here is the rest, element by element:
the bias and the activation after each product, the activation's derivative
before each product of the backward pass, the loss and its gradient. A tiny
network, whose passes are all call overhead, runs each pass in one call
instead (:func:`forward_pass`, :func:`backward_pass`): the same elementwise
steps around products written as plain loops in a fixed order.
"""

import numpy as np

from ._jit import jit
from .activations import RELU, activate, derivative
from .losses import logit_gradient, output_probabilities, sample_loss
from .structures import width_of

EXPONENT = np.uint64(0x7FF0000000000000)
"""The exponent bits of a float64: all set in NaN and in +-Inf only."""


@jit()
def any_nonfinite(x):
    """Whether the flat float64 array ``x`` holds a NaN or an Inf.

    A test of each entry's exponent bits, reduced by an integer maximum: no
    floating-point arithmetic, so no overflow, and a loop the compiler
    vectorizes (about twice as fast as numpy's sum of the same array).
    """
    bits = x.view(np.uint64)
    top = np.uint64(0)
    for t in range(bits.shape[0]):
        top = max(top, bits[t] & EXPONENT)
    return top == EXPONENT


@jit(entry=False)
def node_block(buffer, node_off, sizes, u):
    """Return node layer ``u``'s ``(batch, sizes[u])`` view of a per-unit buffer."""
    start = node_off[u]
    stop = node_off[u + 1]
    return buffer[start:stop].reshape(((stop - start) // sizes[u], sizes[u]))


@jit(entry=False)
def weight_view(theta, w_off, sizes, u):
    """Return the ``(sizes[u], sizes[u - 1])`` weight producing node layer ``u``."""
    n_out = sizes[u]
    n_in = sizes[u - 1]
    return theta[w_off[u] : w_off[u] + n_out * n_in].reshape((n_out, n_in))


@jit()
def _finish(z, bias, mask, a_out, code, param, hidden):
    for b in range(z.shape[0]):
        for k in range(z.shape[1]):
            total = z[b, k] + bias[k]
            z[b, k] = total
            if hidden:
                a_out[b, k] = activate(code, param, total) * mask[b, k]


@jit()
def finish_layer(z, bias, mask, a_out, code, param, hidden):
    """Add ``bias`` to each row of ``z`` and, for a ``hidden`` layer, write ``A = phi(Z) M``.

    ``z`` (``batch x n``) holds ``A_{u-1} W_u^T`` from the matrix product on
    entry and ``Z_u`` on return; the logits (``hidden`` false) have no
    activation here: the output function belongs to the loss.
    """
    if code == RELU:
        # the code as a constant: the compiler drops the activation's dispatch from the
        # loop and vectorizes it (twice as fast); the same function computes it either way
        _finish(z, bias, mask, a_out, RELU, param, hidden)
    else:
        _finish(z, bias, mask, a_out, code, param, hidden)


@jit()
def sample_losses(pre, node_off, sizes, targets, loss_code, out):
    """Write each sample's loss (from the logits in ``pre``) into ``out``."""
    logits = node_block(pre, node_off, sizes, sizes.shape[0] - 1)
    scratch = np.empty(logits.shape[1])
    for b in range(logits.shape[0]):
        out[b] = sample_loss(loss_code, logits[b], targets[b], scratch)


@jit()
def add_squares(x, total):
    """Return ``total`` plus the sum of the squares of the flat array ``x``, in order."""
    for t in range(x.shape[0]):
        total += x[t] * x[t]
    return total


@jit()
def squared_weight_norm(theta, w_off, sizes):
    """Return the sum over layers of the squared Frobenius norms of the weights.

    Layer by layer with :func:`add_squares`, as the passes sum the weights
    when they are the user's arrays, so that both give the same bits.
    """
    total = 0.0
    for u in range(1, sizes.shape[0]):
        start = w_off[u]
        total = add_squares(theta[start : start + sizes[u] * sizes[u - 1]], total)
    return total


@jit()
def column_sums(x, out):
    """Write the sum of each column of ``x`` (``batch x n``) into ``out``, row after row.

    Row 0 first, then each next row added: the order of numpy's
    ``np.add.reduce(x, axis=0)`` on a C-contiguous array, to the bit.
    """
    for k in range(x.shape[1]):
        out[k] = x[0, k]
    for b in range(1, x.shape[0]):
        for k in range(x.shape[1]):
            out[k] += x[b, k]


@jit()
def output_delta(pre, node_off, sizes, targets, loss_code, delta, bias_grad):
    """Write ``d J / d Z_L`` (the data term, ``1/m`` included) into ``delta`` (``batch x n_L``).

    ``bias_grad`` receives its column sums, the gradient of the output bias
    (:func:`column_sums`).
    """
    n_layers = sizes.shape[0] - 1
    batch = targets.shape[0]
    logits = node_block(pre, node_off, sizes, n_layers)
    for b in range(batch):
        logit_gradient(loss_code, logits[b], targets[b], delta[b])
        for k in range(sizes[n_layers]):
            delta[b, k] /= batch
    column_sums(delta, bias_grad)


@jit()
def add_scaled(out, x, factor):
    """``out += factor * x`` on flat arrays of the same length."""
    for t in range(out.shape[0]):
        out[t] += factor * x[t]


@jit()
def _through(d_act, z, mask, code, param):
    for b in range(d_act.shape[0]):
        for j in range(d_act.shape[1]):
            d_act[b, j] *= mask[b, j] * derivative(code, param, z[b, j])


@jit()
def through_activation(d_act, z, mask, code, param, bias_grad):
    """Turn ``dJ/dA_u`` into ``dJ/dZ_u`` in place: times ``M_u phi'(Z_u)``.

    ``param`` is the activation's parameter (:mod:`fastgrad.kernels.activations`).
    ``bias_grad`` receives the column sums of ``dJ/dZ_u``, the gradient of the
    bias of layer ``u`` (:func:`column_sums`).
    """
    if code == RELU:
        _through(d_act, z, mask, RELU, param)  # the code as a constant, as in finish_layer
    else:
        _through(d_act, z, mask, code, param)
    column_sums(d_act, bias_grad)


@jit()
def output_batch(pre, node_off, sizes, loss_code, out):
    """Write the output function (identity, sigmoid or softmax) of every sample's logits."""
    logits = node_block(pre, node_off, sizes, sizes.shape[0] - 1)
    for b in range(logits.shape[0]):
        output_probabilities(loss_code, logits[b], out[b])


@jit()
def one_hot(labels, out):
    """Write row ``b`` of ``out`` (``batch x n``, zeros on entry) as the one-hot of ``labels[b]``.

    ``labels`` is int64. Returns the position of the first label outside
    ``0 .. n - 1`` (whose row and those after it are left as they were),
    or -1 when every label fits.
    """
    n = out.shape[1]
    for b in range(labels.shape[0]):
        label = labels[b]
        if label < 0 or label >= n:
            return b
        out[b, label] = 1.0
    return -1


@jit(inline=True)
def times_transposed(a_in, weight, z):
    """``z = a_in weight^T``: ``(batch, n_in)`` by ``(n_out, n_in)``, each entry a row's dot."""
    for b in range(a_in.shape[0]):
        for k in range(weight.shape[0]):
            total = 0.0
            for j in range(a_in.shape[1]):
                total += a_in[b, j] * weight[k, j]
            z[b, k] = total


@jit()
def forward_pass(net):
    """Run the forward pass of ``net`` in one call: write ``pre`` and ``acts`` from ``A_0``.

    ``A_0`` is ``acts``' block 0, filled by the caller. Each layer's product
    is a plain loop, then :func:`finish_layer`. For tiny networks
    (:mod:`fastgrad._passes`).
    """
    sizes, node_off = net.sizes, net.node_off
    n_layers = sizes.shape[0] - 1
    for u in range(1, n_layers + 1):
        z = node_block(net.pre, node_off, sizes, u)
        a_in = node_block(net.acts, node_off, sizes, u - 1)
        times_transposed(a_in, weight_view(net.theta, net.w_off, sizes, u), z)
        finish_layer(
            z,
            net.theta[net.b_off[u] : net.b_off[u] + sizes[u]],
            node_block(net.masks, node_off, sizes, u),
            node_block(net.acts, node_off, sizes, u),
            net.codes[u],
            net.act_params[u],
            u < n_layers,
        )


@jit(inline=True)
def times_weight(delta, weight, out, absolute):
    """``out = delta weight``, or ``delta |weight|`` with ``absolute``.

    ``(batch, n_out)`` by ``(n_out, n_in)``, each sum over the outputs in their
    order, the whole row of inputs at a time (``D^T A`` as ``times_weight(D.T, A, out,
    False)``).
    """
    for b in range(delta.shape[0]):
        for j in range(out.shape[1]):
            out[b, j] = 0.0
        for k in range(delta.shape[1]):
            d = delta[b, k]
            for j in range(out.shape[1]):
                out[b, j] += d * (abs(weight[k, j]) if absolute else weight[k, j])


@jit()
def backward_pass(net, targets, loss_code, l2, grad):
    """Write the gradient of ``J`` into ``grad`` in one call, for a tiny network.

    The backward pass of :func:`fastgrad._passes.backward` (``J`` with the
    ``1/m`` data term and ``l2 / (2m) sum ||W||^2``) after :func:`forward_pass`:
    :func:`output_delta`, then per layer ``dW_u = D_u^T A_{u-1}`` (plus
    :func:`add_scaled` of the weights) and ``D_{u-1} = (D_u W_u)`` through
    :func:`through_activation`, which writes the bias gradients
    (:func:`column_sums`). Products are plain loops, each sum in order.
    """
    sizes, node_off, w_off, b_off = net.sizes, net.node_off, net.w_off, net.b_off
    n_layers = sizes.shape[0] - 1
    batch = targets.shape[0]
    widest = width_of(sizes)
    buffer = np.empty(2 * batch * widest)
    delta = buffer[: batch * sizes[n_layers]].reshape((batch, sizes[n_layers]))
    start = b_off[n_layers]
    output_delta(
        net.pre, node_off, sizes, targets, loss_code, delta, grad[start : start + sizes[n_layers]]
    )
    for u in range(n_layers, 0, -1):
        n_out, n_in = sizes[u], sizes[u - 1]
        d_weight = grad[w_off[u] : w_off[u] + n_out * n_in]
        a_in = node_block(net.acts, node_off, sizes, u - 1)
        times_weight(delta.T, a_in, d_weight.reshape((n_out, n_in)), False)  # D^T A
        weight = weight_view(net.theta, w_off, sizes, u)
        if l2 != 0.0:
            add_scaled(d_weight, weight.reshape(n_out * n_in), l2 / batch)
        if u > 1:
            half = (n_layers - u + 1) % 2
            below = buffer[half * batch * widest :][: batch * n_in].reshape((batch, n_in))
            times_weight(delta, weight, below, False)
            through_activation(
                below,
                node_block(net.pre, node_off, sizes, u - 1),
                node_block(net.masks, node_off, sizes, u - 1),
                net.codes[u - 1],
                net.act_params[u - 1],
                grad[b_off[u - 1] : b_off[u - 1] + n_in],
            )
            delta = below
