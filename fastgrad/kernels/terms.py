"""The gradient's magnitude (:mod:`fastgrad._magnitude`): its elementwise steps and its scale.

The sums of the magnitude itself stay numpy's (``numpy.einsum``,
``numpy.add.reduce``), so that it keeps their rounding; what the step kernels
do is exact in any order (absolute values, maxima, the slope of a
piecewise-linear unit times its dropout multiplier), in one call per layer
where numpy would take several. :func:`layer_bound` sums over the batch for
the gradient's scale, a bound taken with a margin of ``1e3`` unit roundoffs,
to which the order of its sums is a few units in the last place;
:func:`network_scale` computes the whole scale in one call, its products as
plain loops in a fixed order.
"""

import math

import numpy as np

from ._jit import jit
from .activations import ELU, LEAKY_RELU, RELU, SIGMOID, SOFTPLUS, TANH
from .dense import node_block, times_weight, weight_view
from .losses import CROSS_ENTROPY
from .structures import width_of


@jit()
def row_reach(block, out):
    """Fill ``out[b]`` with ``max(0, max_j |block[b, j]|)`` (NaN propagates, as in numpy)."""
    for b in range(block.shape[0]):
        top = 0.0
        nan = False
        for j in range(block.shape[1]):
            value = abs(block[b, j])
            if value > top:
                top = value
            nan = nan or math.isnan(value)
        out[b] = math.nan if nan else top


@jit()
def times_slope(code, param, pre, masks, out):
    """Multiply ``out`` by ``|phi'(pre)| |masks|`` in place, for a piecewise-linear ``code``.

    ``code`` is identity, relu or leaky relu (``param`` its slope for
    negative inputs); relu's slope at its kink is 1, as
    :mod:`fastgrad._magnitude` takes it. Each entry is multiplied by the
    product of the slope and the multiplier (a slope of 0 or 1 leaves it
    exact; ``|param|`` to rounding).
    """
    for b in range(pre.shape[0]):
        for k in range(pre.shape[1]):
            z = pre[b, k]
            if code == RELU:
                slope = 1.0 if z >= 0.0 else 0.0
            elif code == LEAKY_RELU:
                slope = 1.0 if z > 0.0 else abs(param)
            else:
                slope = 1.0
            out[b, k] *= slope * abs(masks[b, k])


@jit()
def layer_bound(a_in, delta, reach):
    """Return the largest bound of a layer's weight and bias entries, before the ``1/m``.

    With ``r_b = max_j |a_in[b, j]|`` (written to ``reach``, as
    :func:`row_reach` does), the largest over output units ``k`` of ``sum_b
    r_b delta[b, k]`` (a weight entry's terms are at most that) and of ``sum_b
    delta[b, k]`` (a bias entry's terms), each at least 0; either is NaN when
    one of its sums is, as ``numpy.maximum.reduce`` gives it.

    Parameters
    ----------
    a_in : ndarray
        ``(batch, n_in)``: the layer's inputs.
    delta : ndarray
        ``(batch, n_out)``: sums of absolute terms reaching the layer's units.
    reach : ndarray
        ``(batch,)``, overwritten with ``r_b``.

    Returns
    -------
    (float, float)
        The weights' and the biases' largest sums.
    """
    row_reach(a_in, reach)
    weight_top = bias_top = 0.0
    weight_nan = bias_nan = False
    for k in range(delta.shape[1]):
        column = bias = 0.0
        for b in range(delta.shape[0]):
            column += reach[b] * delta[b, k]
            bias += delta[b, k]
        if column > weight_top:
            weight_top = column
        if bias > bias_top:
            bias_top = bias
        weight_nan = weight_nan or math.isnan(column)
        bias_nan = bias_nan or math.isnan(bias)
    return (math.nan if weight_nan else weight_top), (math.nan if bias_nan else bias_top)


@jit(inline=True)
def _slope(code, param, z):
    """Return ``|phi'(z)|`` as the magnitude takes it (relu's slope at its kink is 1)."""
    if code == RELU:
        return 1.0 if z >= 0.0 else 0.0
    if code == LEAKY_RELU:
        return 1.0 if z > 0.0 else abs(param)
    # smooth slopes without cancellation (as _magnitude's numpy ones): 1 - tanh^2 loses
    # all its digits as a unit saturates, and libm's tanh is not numpy's to the bit; each
    # exponent is at most 0, so that nothing overflows, in Python (NUMBA_DISABLE_JIT) either
    if code == TANH:
        e = math.exp(-2.0 * abs(z))
        return 4.0 * e / ((1.0 + e) * (1.0 + e))
    if code == SIGMOID:
        e = math.exp(-abs(z))
        return e / ((1.0 + e) * (1.0 + e))
    if code == SOFTPLUS:
        e = math.exp(-abs(param * z))
        return 1.0 / (1.0 + e) if param * z >= 0.0 else e / (1.0 + e)
    if code == ELU:
        return 1.0 if z > 0.0 else abs(param) * math.exp(min(z, 0.0))
    return 1.0


@jit(inline=True)
def _spread_down(delta, weight, pre, masks, code, param, below):
    """Write ``(delta |W|) |phi'(pre)| |masks|`` into ``below`` (``batch x n_in``).

    ``weight`` ``(n_out, n_in)``; the product is :func:`~fastgrad.kernels.dense.times_weight`'s.
    """
    times_weight(delta, weight, below, True)
    for b in range(below.shape[0]):
        for j in range(below.shape[1]):
            below[b, j] *= _slope(code, param, pre[b, j]) * abs(masks[b, j])


@jit()
def network_scale(net, inputs, prob, targets, loss_code, factor, l2):
    """Return the gradient's scale: the largest bound of any entry's sum of absolute terms.

    The quantity of :func:`fastgrad._magnitude.gradient_scale`, for every
    layer in one call: the output's ``|p| + |y|`` (``p sum|y| + |y|`` for
    cross-entropy's softmax) times ``|factor|``, carried down through
    ``|W_u|`` and ``|phi'| |M|``; per layer :func:`layer_bound`'s largest
    sums over the batch divided by the batch size, the weights' with ``l2
    max |W_u|`` added.

    Parameters
    ----------
    net : Network
        After the forward pass; ``theta`` holds the parameters.
    inputs : ndarray
        ``(batch, sizes[0])``: the batch's inputs (the first activations).
    prob, targets : ndarray
        ``(batch, sizes[L])``: the output function of the logits, the dense targets.
    loss_code : int
        The loss (:mod:`fastgrad.kernels.losses`).
    factor : float
        The data term's factor of the network's convention (1 for the course's).
    l2 : float
        The L2 coefficient.

    Returns
    -------
    float
        Nonnegative, in gradient units. A NaN sum of a layer is passed over,
        as Python's ``max`` passes it.
    """
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    batch = targets.shape[0]
    widest = width_of(sizes)
    buffer = np.empty(2 * batch * widest)
    reach = np.empty(batch)
    n_out = sizes[n_layers]
    delta = buffer[: batch * n_out].reshape((batch, n_out))
    for b in range(batch):
        total = 0.0
        if loss_code == CROSS_ENTROPY:  # p sum(y) - y: soft targets need not sum to 1
            for k in range(n_out):
                total += abs(targets[b, k])
        for k in range(n_out):
            if loss_code == CROSS_ENTROPY:
                delta[b, k] = prob[b, k] * total + abs(targets[b, k])
            else:
                delta[b, k] = abs(prob[b, k]) + abs(targets[b, k])
            if factor != 1.0:
                delta[b, k] *= abs(factor)  # the network's convention for the data term
    scale = 0.0
    for u in range(n_layers, 0, -1):
        n_in = sizes[u - 1]
        weight = weight_view(net.theta, net.w_off, sizes, u)
        a_in = inputs if u == 1 else node_block(net.acts, net.node_off, sizes, u - 1)
        largest, bias = layer_bound(a_in, delta, reach)
        if l2 != 0.0 and weight.size:
            top = 0.0  # NaN propagates, as in numpy's maximum
            for k in range(weight.shape[0]):
                for j in range(n_in):
                    value = abs(weight[k, j])
                    if value > top or math.isnan(value):
                        top = value
            largest += l2 * top
        # Python's max(scale, w, b): a NaN never compares greater
        if largest / batch > scale:
            scale = largest / batch
        if bias / batch > scale:
            scale = bias / batch
        if u > 1:
            half = (n_layers - u + 1) % 2
            below = buffer[half * batch * widest :][: batch * n_in].reshape((batch, n_in))
            _spread_down(
                delta,
                weight,
                node_block(net.pre, net.node_off, sizes, u - 1),
                node_block(net.masks, net.node_off, sizes, u - 1),
                net.codes[u - 1],
                net.act_params[u - 1],
                below,
            )
            delta = below
    return scale
