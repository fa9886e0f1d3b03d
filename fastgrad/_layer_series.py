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

from .kernels.jets import ORDER
from .kernels.layer_series import (
    ACTIVE,
    ODD_ORDER,
    SHORT,
    SKIP,
    activate_jets,
    batched,
    finish_jets,
    start_jets,
)

BLOCK_FLOATS = 1 << 22
"""Most float64 entries of one block's jets (32 MiB): samples and units are carried in blocks
no larger, so that the scratch does not grow with the batch."""

LOW_ORDER = ODD_ORDER
"""The order tried first when every step of the block is at most :data:`LOW_REACH`.

The centered difference reads only the odd terms of the loss series, and
:func:`~fastgrad.kernels.layer_series.odd_tail_fits` bounds those past the
third; a jet's products cost in proportion to its order and its elementwise
steps to the square, so order 3 costs about 3/7 of ``ORDER = 7``. What the
bound refuses is carried again with every order."""

LOW_REACH = 1e-6
"""Largest step ``r = eps max(1, max_j |A_{u-1}[b, j]|)`` at which :data:`LOW_ORDER` is tried
first. At the default step (1e-7) and inputs of unit scale the terms fall by more than 1e5
per order, and the bound passes at order 3 for nearly every (unit, sample); at 1e-6
and above a retry would often cost more than it saves."""


def first_order(radius):
    """Return the order of the first pass for a block whose largest step is ``radius``."""
    return LOW_ORDER if radius <= LOW_REACH else ORDER


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
        for k in range(u + 2, n_layers + 1)
    }
    for first in range(0, units.size, per_units):
        block_units = np.ascontiguousarray(units[first : first + per_units])
        for b0 in range(0, batch, per_block):
            n_samples = min(per_block, batch - b0)
            radius = epsilon * reach_in[u - 1, b0 : b0 + n_samples]
            state = np.full((n_samples, block_units.size), ACTIVE, dtype=np.int8)
            top = first_order(radius.max())
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
                )
                short = state == SHORT
                if top == ORDER or not short.any():
                    break
                # what the tail test refused at this order, again with every order
                again = short.any(axis=0)
                block_units = block_units[again]
                state = np.where(short[:, again], ACTIVE, SKIP).astype(np.int8)
                top = ORDER


def _carry(net, head, loss_code, u, units, b0, radius, weights, top, state, coef, ready):
    """One pass of :func:`layer_series` over a block, with jets to order ``top``."""
    sizes = net.sizes
    n_samples = radius.size
    jets = np.empty((sizes[u + 1], n_samples, top, units.size))
    moves = np.empty((n_samples, units.size))
    start_jets(u, units, b0, radius, net, jets, state, moves)
    for k in range(u + 1, sizes.size - 1):
        activate_jets(k, b0, radius, net, jets, state, moves)
        flat = jets.reshape(sizes[k], -1)
        jets = (weights[k + 1] @ flat).reshape(sizes[k + 1], n_samples, top, -1)
    finish_jets(u, units, b0, radius, net, head, loss_code, jets, state, moves, coef, ready)
