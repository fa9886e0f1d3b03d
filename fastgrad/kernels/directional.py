"""Centered differences along whole-tensor directions.

``J(theta + eps v) - J(theta - eps v)`` for directions ``v`` that move one
weight (or one bias) tensor. The layers before it are reused from the
unperturbed pass; its pre-activations move by ``eps (V a + v_b)`` and the
change is carried exactly to the loss by
:func:`~fastgrad.kernels.propagate.carry_to_loss`, one sample per parallel
iteration, both signs and all directions together.
"""

import numba
import numpy as np

from ._jit import jit
from .dense import node_block
from .propagate import carry_to_loss


@jit(parallel=True)
def directional_differences(
    u,
    weight_dirs,
    bias_dirs,
    epsilon,
    theta,
    w_off,
    sizes,
    codes,
    masks,
    node_off,
    acts,
    pre,
    prob,
    targets,
    loss_code,
    out,
    kinks,
):
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
    theta, w_off, sizes, codes, masks, node_off, acts, pre
        The network after its forward pass (see :mod:`fastgrad.kernels.dense`).
    prob, targets : ndarray
        ``(batch, n_out)`` output probabilities and targets.
    loss_code : int
        Loss code.
    out : ndarray
        Output, ``(batch, k)``.
    kinks : int64 ndarray
        Output, ``(batch, k)``: evaluations (of 2) that crossed a kink.
    """
    n_dirs = weight_dirs.shape[0]
    n_out = sizes[u]
    n_in = sizes[u - 1]
    width = 1
    for v in range(sizes.shape[0]):
        width = max(width, sizes[v])
    batch = targets.shape[0]
    a_in = node_block(acts, node_off, sizes, u - 1)
    for b in numba.prange(batch):
        dz_a = np.empty((2 * n_dirs, width))
        dz_b = np.empty((2 * n_dirs, width))
        f_out = np.empty(2 * n_dirs)
        crossed = np.empty(2 * n_dirs, dtype=np.bool_)
        for d in range(n_dirs):
            for p in range(n_out):
                total = bias_dirs[d, p]
                for j in range(n_in):
                    total += weight_dirs[d, p, j] * a_in[b, j]
                dz_a[2 * d, p] = epsilon * total
                dz_a[2 * d + 1, p] = -epsilon * total
        carry_to_loss(
            u,
            b,
            2 * n_dirs,
            theta,
            w_off,
            sizes,
            codes,
            masks,
            node_off,
            pre,
            prob,
            targets,
            loss_code,
            dz_a,
            dz_b,
            f_out,
            crossed,
        )
        for d in range(n_dirs):
            out[b, d] = f_out[2 * d] - f_out[2 * d + 1]
            kinks[b, d] = crossed[2 * d] + crossed[2 * d + 1]
