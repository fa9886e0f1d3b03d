"""How a change of one unit's pre-activation reaches the loss of one sample.

Two closed forms used by the finite-difference kernel, each with the test
that says when it may be used:

- :func:`unit_series`: the loss change as a power series in the step ``g``
  of the unit's pre-activation, carried through every later layer with the
  recurrences of :mod:`fastgrad.kernels.jets`; valid when no unit can reach a
  kink and every series converges fast.
- :func:`line_direction`: when every later hidden layer is piecewise linear,
  the logits move along a line ``z + s v`` as long as no unit changes side;
  the direction and the largest such ``s``.
"""

import math

from ._jit import jit
from .activations import ELU, LEAKY_RELU, RELU, derivative, is_kinked, is_piecewise_linear
from .dense import node_block, weight_view
from .jets import ORDER, activation_jet, loss_jet, reach
from .losses import MSE

SAFETY = 1.0 - 1e-9
"""Margin on the distance to a kink inside which no unit changes side."""

JET_REACH = 1e-4
"""How far a smooth unit or a logit may move for the series to be used."""

TAIL = 1e-17
"""Largest share of the last two terms kept in the loss's series."""


@jit()
def line_direction(u, i, b, net, v_a, v_b, direction):
    """Write into ``direction`` how the logits move per unit change of ``A_u[b, i]``.

    Assumes every hidden layer after ``u`` is piecewise linear. Returns the
    largest change for which no kinked unit of those layers changes side.
    ``net`` is the network tuple of
    :func:`~fastgrad.kernels.finite_diff.centered_differences`.
    """
    theta, w_off, wt, sizes, codes, masks, node_off, acts, pre, prob, targets = net[:11]
    n_layers = sizes.shape[0] - 1
    n_out = sizes[n_layers]
    if u == n_layers:
        direction[:n_out] = 0.0
        direction[i] = 1.0
        return math.inf
    n = sizes[u + 1]
    start = w_off[u + 1] + i * n
    v_a[:n] = wt[start : start + n]
    radius = math.inf
    for k in range(u + 1, n_layers):
        z_k = node_block(pre, node_off, sizes, k)[b]
        m_k = node_block(masks, node_off, sizes, k)[b]
        code = codes[k]
        kinked = is_kinked(code)
        for q in range(sizes[k]):
            vq = v_a[q]
            m = m_k[q]
            if m == 0.0:
                v_a[q] = 0.0
                continue
            if kinked and vq != 0.0:
                radius = min(radius, abs(z_k[q]) / abs(vq))
            v_a[q] = vq * m * derivative(code, z_k[q])
        weight = weight_view(theta, w_off, sizes, k + 1)
        for p in range(sizes[k + 1]):
            total = 0.0
            for q in range(sizes[k]):
                total += weight[p, q] * v_a[q]
            v_b[p] = total
        v_a, v_b = v_b, v_a
    direction[:n_out] = v_a[:n_out]
    return radius


@jit()
def _breaks_at_zero(code):
    """Whether a unit's series breaks where its pre-activation crosses 0."""
    return code == RELU or code == LEAKY_RELU or code == ELU


@jit()
def unit_series(u, i, b, r, net, loss_code, scratch, out):
    """Fill ``out`` with the series in ``g`` of ``loss_b`` when ``Z_u[b, i]`` moves by ``g``.

    Returns False, leaving ``out`` meaningless, when the series cannot be
    trusted for ``|g| <= r``: a kinked unit could change side, a smooth
    unit or the loss could move beyond :data:`JET_REACH`, or the last terms
    kept are not negligible. ``net`` is the network tuple of
    :func:`~fastgrad.kernels.finite_diff.centered_differences`; ``scratch``
    holds two ``(ORDER + 1, width)`` and seven ``ORDER + 1`` arrays.
    """
    theta, w_off, wt, sizes, codes, masks, node_off, acts, pre, prob, targets = net[:11]
    jet_a, jet_b, w, act, y, q, e, s, log = scratch
    n_layers = sizes.shape[0] - 1
    n_out = sizes[n_layers]
    for n in range(ORDER + 1):
        w[n] = 0.0
    w[1] = 1.0
    z = node_block(pre, node_off, sizes, u)[b, i]
    if u == n_layers:
        if r > JET_REACH and loss_code != MSE:
            return False
        jet_a[:, :n_out] = 0.0
        jet_a[1, i] = 1.0
        degree = 1
    else:
        code = codes[u]
        if _breaks_at_zero(code):
            if not r < abs(z) * SAFETY:
                return False
        elif not is_piecewise_linear(code) and r > JET_REACH:
            return False
        activation_jet(code, z, w, act, y, q)
        m = node_block(masks, node_off, sizes, u)[b, i]
        degree = 1 if is_piecewise_linear(code) else ORDER
        still = True
        for d in range(1, degree + 1):
            still = still and act[d] == 0.0
        if still:
            # a unit that stays dead: the loss does not move at all
            for d in range(ORDER + 1):
                out[d] = 0.0
            return True
        n = sizes[u + 1]
        start = w_off[u + 1] + i * n
        for d in range(1, degree + 1):
            for p in range(n):
                jet_a[d, p] = m * act[d] * wt[start + p]
        for k in range(u + 1, n_layers):
            z_k = node_block(pre, node_off, sizes, k)[b]
            m_k = node_block(masks, node_off, sizes, k)[b]
            code = codes[k]
            kinked = _breaks_at_zero(code)
            smooth = not is_piecewise_linear(code)
            for p in range(sizes[k]):
                if m_k[p] == 0.0:
                    for d in range(1, degree + 1):
                        jet_a[d, p] = 0.0
                    continue
                for d in range(1, degree + 1):
                    w[d] = jet_a[d, p]
                moved = reach(w, r)
                if kinked:
                    if not moved < abs(z_k[p]) * SAFETY:
                        return False
                elif smooth and moved > JET_REACH:
                    return False
                activation_jet(code, z_k[p], w, act, y, q)
                for d in range(1, degree + 1):
                    jet_a[d, p] = m_k[p] * act[d]
                if smooth:
                    for d in range(degree + 1, ORDER + 1):
                        jet_a[d, p] = m_k[p] * act[d]
            if smooth:
                degree = ORDER
            weight = weight_view(theta, w_off, sizes, k + 1)
            for d in range(1, degree + 1):
                for p in range(sizes[k + 1]):
                    total = 0.0
                    for c in range(sizes[k]):
                        total += weight[p, c] * jet_a[d, c]
                    jet_b[d, p] = total
            jet_a, jet_b = jet_b, jet_a
        if loss_code != MSE:
            for c in range(n_out):
                for d in range(1, degree + 1):
                    w[d] = jet_a[d, c]
                if reach(w, r) > JET_REACH:
                    return False
    for d in range(degree + 1, ORDER + 1):
        jet_a[d, :n_out] = 0.0
    jet_a[0, :n_out] = 0.0
    logits = node_block(pre, node_off, sizes, n_layers)[b]
    loss_jet(loss_code, logits, prob[b], targets[b], jet_a[:, :n_out], out, e, s, log)
    total = 0.0
    power = 1.0
    for d in range(1, ORDER + 1):
        power *= r
        total += abs(out[d]) * power
    tail = abs(out[ORDER - 1]) * r ** (ORDER - 1) + abs(out[ORDER]) * r**ORDER
    return tail <= TAIL * total
