"""Centered differences along whole-tensor directions: the elementwise parts.

``J(theta + eps v) - J(theta - eps v)`` for directions ``v`` that move one
weight (or one bias) tensor is carried from the perturbed layer to the loss
as differences from the unperturbed pass, every evaluation (both signs of
every direction) and every sample at once. The matrix products run in BLAS
(:func:`fastgrad._passes.directional_differences`); these kernels are what
lies between them: ``dA = M (phi(Z + dZ) - phi(Z))`` by the cancellation-free
:func:`~fastgrad.kernels.activations.difference`, with the kink crossings
counted, and the loss change at the logits
(:func:`~fastgrad.kernels.losses.loss_difference`).
"""

from ._jit import jit
from .activations import difference, is_kinked
from .losses import loss_difference


@jit()
def through_activation(dz, z, mask, code, param, crossed):
    """Turn changes of ``Z_k`` into changes of ``A_k`` in place, counting kink crossings.

    Parameters
    ----------
    dz : ndarray
        ``(columns, batch, n_k)``: in, how much ``Z_k`` moves in each
        evaluation; out, how much ``A_k = phi(Z_k) M_k`` moves.
    z, mask : ndarray
        ``(batch, n_k)``: the unperturbed ``Z_k`` and the dropout multipliers.
    code : int
        Activation code of node layer ``k``.
    param : float
        Its parameter (:mod:`fastgrad.kernels.activations`).
    crossed : int64 ndarray
        ``(columns, batch)``: adds, per evaluation and sample, the kinked
        units (not dropped) whose pre-activation changed side.
    """
    kinked = is_kinked(code, param)
    for c in range(dz.shape[0]):
        for b in range(dz.shape[1]):
            for q in range(dz.shape[2]):
                d = dz[c, b, q]
                m = mask[b, q]
                if m == 0.0 or d == 0.0:
                    dz[c, b, q] = 0.0
                    continue
                zq = z[b, q]
                if kinked and ((zq + d > 0.0) != (zq > 0.0)):
                    crossed[c, b] += 1
                dz[c, b, q] = m * difference(code, param, zq, d)


@jit()
def loss_changes(dz, logits, prob, targets, loss_code, f_out):
    """Write ``loss_b(Z_L + dz[c, b]) - loss_b(Z_L)`` into ``f_out[c, b]``.

    ``dz`` is ``(columns, batch, n_L)``, the logits' change in each
    evaluation; ``logits``, ``prob`` and ``targets`` are ``(batch, n_L)``.
    """
    for c in range(dz.shape[0]):
        for b in range(dz.shape[1]):
            f_out[c, b] = loss_difference(loss_code, logits[b], prob[b], targets[b], dz[c, b])
