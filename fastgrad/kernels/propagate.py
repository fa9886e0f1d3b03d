"""Carry changes of pre-activations exactly through the rest of the network.

Given how much the pre-activations of one node layer move for a sample, in
several columns at once (several perturbations), this computes how much the
sample's loss moves in each, layer by layer, as differences from the
unperturbed pass: ``dA = M (phi(Z + dZ) - phi(Z))`` by the cancellation-free
:func:`~fastgrad.kernels.activations.difference`, ``dZ_next = W dA``, and at
the logits the loss change from ``expm1``/``log1p``
(:func:`~fastgrad.kernels.losses.loss_difference`). Along the way it records
whether a relu or leaky relu pre-activation changed side (a kink crossing).
"""

from ._jit import jit
from .activations import difference, is_kinked
from .dense import node_block, weight_view
from .losses import loss_difference


@jit()
def carry_to_loss(
    k0,
    b,
    n_cols,
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
):
    """Carry ``dz_a[c, :sizes[k0]]``, the change of ``Z_k0[b]`` in column ``c``, to the loss.

    Parameters
    ----------
    k0 : int
        Node layer whose pre-activations ``dz_a`` holds changes of.
    b : int
        Sample.
    n_cols : int
        Columns of ``dz_a`` in use.
    theta, w_off, sizes, codes, masks, node_off, pre
        The network after its forward pass (see :mod:`fastgrad.kernels.dense`).
    prob, targets : ndarray
        ``(batch, n_out)`` output probabilities and targets.
    loss_code : int
        Loss code.
    dz_a, dz_b : ndarray
        ``(columns, width)`` scratch; ``dz_a`` holds the input and is overwritten.
    f_out : ndarray
        Output: the loss change of each column.
    crossed : bool ndarray
        Output: whether a kinked unit changed side in each column.
    """
    n_layers = sizes.shape[0] - 1
    for c in range(n_cols):
        crossed[c] = False
    for k in range(k0, n_layers):
        z_k = node_block(pre, node_off, sizes, k)[b]
        m_k = node_block(masks, node_off, sizes, k)[b]
        code = codes[k]
        kinked = is_kinked(code)
        weight = weight_view(theta, w_off, sizes, k + 1)
        for c in range(n_cols):
            for q in range(sizes[k]):
                d = dz_a[c, q]
                m = m_k[q]
                if m == 0.0 or d == 0.0:
                    dz_a[c, q] = 0.0
                    continue
                z = z_k[q]
                if kinked and ((z + d > 0.0) != (z > 0.0)):
                    crossed[c] = True
                dz_a[c, q] = m * difference(code, z, d)
            for p in range(sizes[k + 1]):
                total = 0.0
                for q in range(sizes[k]):
                    total += weight[p, q] * dz_a[c, q]
                dz_b[c, p] = total
        dz_a, dz_b = dz_b, dz_a
    n_out = sizes[n_layers]
    logits = node_block(pre, node_off, sizes, n_layers)[b]
    for c in range(n_cols):
        f_out[c] = loss_difference(loss_code, logits, prob[b], targets[b], dz_a[c, :n_out])


@jit()
def carry_unit_change(u, i, b, n_cols, s_col, net, loss_code, dz_a, dz_b, f_out, crossed):
    """Carry activation changes ``s_col`` of unit ``(u, i)`` to the loss of sample ``b``.

    Writes the loss change of each column into ``f_out`` and whether any
    kinked unit changed side into ``crossed``. ``net`` is the network tuple
    of :func:`~fastgrad.kernels.finite_diff.centered_differences`.
    """
    theta, w_off, wt, sizes, codes, masks, node_off, acts, pre, prob, targets = net[:11]
    n_layers = sizes.shape[0] - 1
    if u == n_layers:
        for c in range(n_cols):
            dz_a[c, : sizes[n_layers]] = 0.0
            dz_a[c, i] = s_col[c]
    else:
        n = sizes[u + 1]
        start = w_off[u + 1] + i * n
        column = wt[start : start + n]
        for c in range(n_cols):
            for q in range(n):
                dz_a[c, q] = s_col[c] * column[q]
    carry_to_loss(
        min(u + 1, n_layers),
        b,
        n_cols,
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
