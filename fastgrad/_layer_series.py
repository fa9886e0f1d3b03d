"""The series path for all units of a layer at once, with the dense products in numpy.

For a node layer ``u`` after which every hidden layer is smooth
(:func:`fastgrad.kernels.layer_series.batched`), the jets that
:func:`fastgrad.kernels.unit_series.unit_series` carries for one unit at a
time are carried for a block of units and samples together: the jets of
node layer ``k`` form a matrix ``X_k`` of ``sizes[k]`` rows and one column
per (sample, order, unit), and the next layer's are ``W_{k+1} X_k``, one
matrix product per layer. Between the products the elementwise steps of
:mod:`fastgrad.kernels.layer_series` apply the activations' jets and every
test of the one-unit path. What comes out is, per (unit, sample), the loss
series that the finite-difference kernel evaluates for every input of the
unit's row, or a refusal, after which the kernel takes the other paths.
The order of the jets is chosen from the step (:func:`first_order`).
"""

import numpy as np

from .kernels.dense import through_activation
from .kernels.jets import ORDER
from .kernels.layer_series import (
    ACTIVE,
    ODD_ORDER,
    SHORT,
    SKIP,
    activate_jets,
    activate_low_jets,
    batched,
    finish_jets,
    logit_adjoints,
    start_jets,
)

BLOCK_FLOATS = 1 << 22
"""Most float64 entries of one block's jets (32 MiB): samples and units are carried in blocks
no larger, so that the scratch does not grow with the batch."""

LOW_ORDER = ODD_ORDER
"""The order tried first when every step of the block is at most :data:`LOW_REACH`.

The centered difference reads only the odd terms of the loss series, and
:func:`~fastgrad.kernels.layer_series.odd_tail_fits` bounds those past the
third. Its jets are carried to order 2 and the third order is gathered by
adjoints (:func:`_carry`): two matrix products per later layer, against seven
for ``ORDER``. What the bound refuses is carried again to :data:`MID_ORDER`."""

MID_ORDER = 5
"""The order tried first at larger steps, and second after :data:`LOW_ORDER`: four orders
carried, the fifth gathered, the odd terms from the seventh on bounded. What its bound refuses
(rarely: ``2 q^6`` of the whole where the first order leads) is carried with every order."""

ORDERS = (LOW_ORDER, MID_ORDER, ORDER)
"""The orders of the passes, each taking what the one before refused for its tail."""

LOW_REACH = 1e-5
"""Largest step ``r = eps max(1, max_j |A_{u-1}[b, j]|)`` at which :data:`LOW_ORDER` is tried
first. Its bound passes for nearly every (unit, sample) of the 2048-wide tanh network up to
``r ~ 1e-5`` (the first layer's units at a step of 3e-6: 511 of 512) and for none at ``r ~
4e-5``, where the moves through the later layers reach some 1e-4 of the disc; above it the
first pass is :data:`MID_ORDER`."""


def first_order(radius):
    """Return the order of the first pass for a block whose largest step is ``radius``."""
    return LOW_ORDER if radius <= LOW_REACH else MID_ORDER


def _blocks(width, n_units, batch):
    """Return ``(samples, units)`` per block: as many samples as fit, else fewer units."""
    per_sample = width * ORDER * n_units
    if per_sample <= BLOCK_FLOATS:
        return min(batch, BLOCK_FLOATS // per_sample), n_units
    return 1, max(1, BLOCK_FLOATS // (width * ORDER))


def layer_series(net, head, tables, loss_code, epsilon, u, units):
    """Fill the series of ``units`` of node layer ``u`` in every sample, or refuse them.

    Parameters
    ----------
    net : Network
        The network after its forward pass.
    head : Head
        Its loss side.
    tables : Tables
        The check's tables: reads ``reach_in``; writes ``series`` and
        ``series_ready`` of the units, :data:`~fastgrad.kernels.layer_series.READY`
        or ``REFUSED``.
    loss_code : int
        Loss code.
    epsilon : float
        Step.
    u : int
        Node layer; :func:`~fastgrad.kernels.layer_series.batched` must hold.
    units : ndarray of int64
        Units of layer ``u``.
    """
    sizes = net.sizes
    n_layers = sizes.size - 1
    if not batched(u, net.codes):
        raise ValueError(f"layer_series: layer {u} is not followed by smooth layers only")
    reach_in = tables.reach_in
    batch = reach_in.shape[1]
    width = int(sizes[u + 1 :].max())
    per_block, per_units = _blocks(width, units.size, batch)
    weights = {
        k: net.theta[net.w_off[k] : net.w_off[k] + sizes[k] * sizes[k - 1]].reshape(
            sizes[k], sizes[k - 1]
        )
        for k in range(u + 1, n_layers + 1)
    }
    adjoints = None  # computed for the first block
    # the jets of one node layer and the next, for every block: pages touched once per call
    floats = width * min(per_block, batch) * ORDER * min(per_units, units.size)
    buffers = (np.empty(floats), np.empty(floats))
    for first in range(0, units.size, per_units):
        for b0 in range(0, batch, per_block):
            block_units = np.ascontiguousarray(units[first : first + per_units])
            n_samples = min(per_block, batch - b0)
            radius = epsilon * reach_in[u - 1, b0 : b0 + n_samples]
            state = np.full((n_samples, block_units.size), ACTIVE, dtype=np.int8)
            top = first_order(radius.max())
            if adjoints is None:
                adjoints = adjoints_after(net, head, loss_code, u, weights)
            while True:
                _carry(
                    net,
                    head,
                    loss_code,
                    u,
                    block_units,
                    b0,
                    radius,
                    weights,
                    top,
                    state,
                    tables.series,
                    tables.series_ready,
                    adjoints,
                    buffers,
                )
                short = state == SHORT
                if top == ORDER or not short.any():
                    break
                # what the tail test refused at this order, again with more orders
                again = short.any(axis=0)
                block_units = block_units[again]
                state = np.where(short[:, again], ACTIVE, SKIP).astype(np.int8)
                top = ORDERS[ORDERS.index(top) + 1]


def adjoints_after(net, head, loss_code, u, weights):
    """Return ``{k: dloss_b / d(M_k A_k)}`` for ``k = u .. L - 1``, each ``(batch, sizes[k])``.

    The unperturbed backward pass of each sample's own loss (no ``1 / batch``), from the
    logits' adjoints (:func:`~fastgrad.kernels.layer_series.logit_adjoints`) back through
    ``W_{k+1}`` and ``M_k phi'(Z_k)``: one matrix product per layer for the whole batch.
    ``weights[k]`` is ``W_k`` for ``k > u``.
    """
    sizes = net.sizes
    n_layers = sizes.size - 1
    batch = net.masks[net.node_off[1] : net.node_off[2]].size // sizes[1]
    delta = np.empty((batch, sizes[n_layers]))
    logits = net.pre[net.node_off[n_layers] : net.node_off[n_layers + 1]]
    logit_adjoints(head, loss_code, logits.reshape(batch, sizes[n_layers]), delta)
    adjoints = {}
    for k in range(n_layers - 1, u - 1, -1):
        adjoints[k] = delta @ weights[k + 1]
        if k > u:
            delta = adjoints[k].copy()
            block = slice(net.node_off[k], net.node_off[k + 1])
            pre = net.pre[block].reshape(batch, sizes[k])
            mask = net.masks[block].reshape(batch, sizes[k])
            unused = np.empty(sizes[k])
            through_activation(delta, pre, mask, net.codes[k], net.act_params[k], unused)
    return adjoints


NO_ADJOINT = np.zeros((0, 0))
"""What the kernels take for the adjoints on a pass that carries every order of its series."""

NO_JETS = np.zeros((0, 0, 0, 0))
"""What :func:`~fastgrad.kernels.layer_series.activate_low_jets` takes for the logits' jets
when it is not the last hidden layer."""


def _carry(
    net,
    head,
    loss_code,
    u,
    units,
    b0,
    radius,
    weights,
    top,
    state,
    coef,
    ready,
    adjoints=None,
    buffers=None,
):
    """One pass of :func:`layer_series` over a block, with the series to order ``top``.

    Below ``ORDER`` the jets are carried to order ``top - 1`` only, and the
    series' order ``top`` is gathered by the adjoints ``adjoints``
    (:func:`adjoints_after`, computed here when None): ``G_top`` is linear in
    the logits' jet of order ``top``, and that jet is the sum over the layers
    ``k`` of the part of the order ``top`` of ``M_k (A_k(g) - A_k)`` that the
    lower orders make (for order 3 ``2 t_2 w_1 w_2 + t_3 w_1^3``,
    :func:`~fastgrad.kernels.layer_series.activate_low_jets`), carried on
    linearly; its dot product with the logits' adjoints is that part's dot
    product with ``dloss_b / d(M_k A_k)``. ``buffers`` holds two flat arrays
    large enough for the jets of any node layer after ``u`` (allocated here
    when None).
    """
    sizes = net.sizes
    n_samples = radius.size
    gather = top < ORDER
    if gather and adjoints is None:
        adjoints = adjoints_after(net, head, loss_code, u, weights)
    carried = top - 1 if gather else top
    columns = n_samples * carried * units.size
    if buffers is None:
        floats = int(sizes[u + 1 :].max()) * columns
        buffers = (np.empty(floats), np.empty(floats))
    jets = buffers[0][: sizes[u + 1] * columns].reshape(sizes[u + 1], n_samples, carried, -1)
    moves = np.empty((n_samples, units.size))
    cubic = np.zeros((n_samples, units.size))
    start_jets(
        u, units, b0, radius, net, jets, state, moves,
        adjoints[u] if gather else NO_ADJOINT, cubic,
    )  # fmt: skip
    n_layers = sizes.size - 1
    for k in range(u + 1, n_layers):
        following = buffers[(k - u) % 2][: sizes[k + 1] * columns].reshape(sizes[k + 1], -1)
        shaped = following.reshape(sizes[k + 1], n_samples, carried, -1)
        if carried in (2, 4):
            last = k == n_layers - 1  # the logits' jets summed in the kernel
            activate_low_jets(
                k, b0, radius, net, jets, state, moves, adjoints[k], cubic,
                weights[k + 1] if last else NO_ADJOINT, shaped if last else NO_JETS,
            )  # fmt: skip
            if last:
                jets = shaped
                continue
        else:
            adjoint = adjoints[k] if gather else NO_ADJOINT
            activate_jets(k, b0, radius, net, jets, state, moves, adjoint, cubic)
        np.matmul(weights[k + 1], jets.reshape(sizes[k], -1), out=following)
        jets = shaped
    finish_jets(
        u, units, b0, radius, net, head, loss_code, jets, state, moves, cubic, gather, coef, ready
    )
