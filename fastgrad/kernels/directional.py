"""Centered differences along whole-tensor directions.

``J(theta + eps v) - J(theta - eps v)`` for directions ``v`` that move one
weight (or one bias) tensor. The layers before it are reused from the
unperturbed pass; its pre-activations move by ``eps (V a + v_b)`` and the
change is carried exactly to the loss by
:func:`~fastgrad.kernels.propagate.carry_to_loss`, one sample per parallel
iteration, both signs and all directions together.
"""

import numba

from ._jit import jit
from .dense import node_block
from .propagate import carry_to_loss
from .structures import carry_scratch, width_of


@jit()
def _sample(b, u, weight_dirs, bias_dirs, epsilon, net, head, loss_code, out, kinks):
    """Fill row ``b`` of ``out`` and ``kinks`` (one parallel iteration)."""
    n_dirs = weight_dirs.shape[0]
    n_in = net.sizes[u - 1]
    a_in = node_block(net.acts, net.node_off, net.sizes, u - 1)
    carry = carry_scratch(2 * n_dirs, width_of(net.sizes))
    for d in range(n_dirs):
        for p in range(net.sizes[u]):
            total = bias_dirs[d, p]
            for j in range(n_in):
                total += weight_dirs[d, p, j] * a_in[b, j]
            carry.dz_a[2 * d, p] = epsilon * total
            carry.dz_a[2 * d + 1, p] = -epsilon * total
    carry_to_loss(u, b, 2 * n_dirs, net, head, loss_code, carry)
    for d in range(n_dirs):
        out[b, d] = carry.f_out[2 * d] - carry.f_out[2 * d + 1]
        kinks[b, d] = (carry.crossed[2 * d] > 0) + (carry.crossed[2 * d + 1] > 0)


@jit(parallel=True)
def directional_differences(u, weight_dirs, bias_dirs, epsilon, net, head, loss_code, out, kinks):
    """Per-sample ``loss_b(theta + eps v_d) - loss_b(theta - eps v_d)`` for each direction.

    Parameters
    ----------
    u : int
        Node layer produced by the perturbed tensors.
    weight_dirs : ndarray
        ``(k, sizes[u], sizes[u - 1])`` weight part of each direction.
    bias_dirs : ndarray
        ``(k, sizes[u])`` bias part of each direction.
    epsilon : float
        Step.
    net : Network
        The network after its forward pass.
    head : Head
        Output probabilities and targets.
    loss_code : int
        Loss code.
    out : ndarray
        Output, ``(batch, k)``.
    kinks : int64 ndarray
        Output, ``(batch, k)``: evaluations (of 2) that crossed a kink.
    """
    for b in numba.prange(out.shape[0]):
        _sample(b, u, weight_dirs, bias_dirs, epsilon, net, head, loss_code, out, kinks)
