"""The series path: the loss change of one sample as a power series in one unit's step.

Perturbing ``W_u[i, j]`` moves ``Z_u[b, i]`` by ``g = eps A_{u-1}[b, j]``.
:func:`unit_series` carries that change through every later layer as a
truncated power series in ``g`` (the recurrences of
:mod:`fastgrad.kernels.jets`), once per (unit, sample); :func:`series_path`
then evaluates the odd part of the series for every input ``j`` of the row,
a few multiply-adds each. It is used only when a bound certifies that, for
every ``|g| <= r = eps max_j |A_{u-1}[b, j]|``, no unit reaches a kink and
the truncated terms are below rounding.
"""

from ._jit import jit
from .activations import ELU, LEAKY_RELU, RELU, SOFTPLUS, is_piecewise_linear
from .jets import ORDER, activation_jet, loss_jet, reach
from .losses import MSE

SAFETY = 1.0 - 1e-9
"""Share of the distance to a kink that a unit may move.

The distances and reaches compared with it are sums of a few products, each
rounded to a few ``u``; a margin of 1e-9 is far above that rounding, so a
unit certified to stay on its side really does."""

JET_REACH = 1e-4
"""How far a smooth unit or a logit may move for the series to be used.

The series of tanh, sigmoid, softplus, elu and of the losses converge in a
disc of radius at least ``pi / 2`` around any point, so each further term
is at most ``JET_REACH / (pi / 2) ~ 6.4e-5`` of the one before. Softplus
with ``beta`` converges in a disc ``beta`` times smaller, so its move is
allowed ``beta`` times less (:func:`_jet_reach`)."""

TAIL = 1e-17
"""Largest share of the whole that the last two terms kept may carry.

Below ``u / 10``: when the last two terms are that small, the terms not
kept (smaller still, by the ratio above) cannot show in float64."""


@jit(entry=False)
def _breaks_at_zero(code):
    """Whether a unit's series breaks where its pre-activation crosses 0."""
    return code == RELU or code == LEAKY_RELU or code == ELU


@jit(entry=False, refcount=False)
def _jet_reach(code, param):
    """How far a smooth unit may move for the series: :data:`JET_REACH`, over beta for softplus."""
    return JET_REACH / param if code == SOFTPLUS else JET_REACH


@jit(entry=False, refcount=False)
def unit_series(u, i, b, r, net, head, wt, loss_code, scratch, out):
    """Fill ``out`` with the series in ``g`` of ``loss_b`` when ``Z_u[b, i]`` moves by ``g``.

    Returns False, leaving ``out`` meaningless, when the series cannot be
    trusted for ``|g| <= r``: a kinked unit could change side, a smooth
    unit or the loss could move beyond :data:`JET_REACH`, or the last terms
    kept are not negligible. ``net``, ``head`` and ``wt`` are the network,
    its loss side and the transposed weights; ``scratch`` is a
    :class:`~fastgrad.kernels.structures.Jets`.
    """
    # the fields read in the loops below, taken out once
    theta, w_off, sizes, codes = net.theta, net.w_off, net.sizes, net.codes
    masks, node_off, pre = net.masks, net.node_off, net.pre
    jet_a = scratch.now
    jet_b = scratch.next
    w, act, y, q = scratch.w, scratch.act, scratch.y, scratch.q
    n_layers = sizes.shape[0] - 1
    n_out = sizes[n_layers]
    for n in range(ORDER + 1):
        w[n] = 0.0
    w[1] = 1.0
    # flat indices into the per-unit buffers and theta, not views: a view in a loop that
    # runs per (unit, sample) costs a reference count up and down, more than its arithmetic
    z = pre[node_off[u] + b * sizes[u] + i]
    if u == n_layers:
        if r > JET_REACH and loss_code != MSE:
            return False
        jet_a[:, :n_out] = 0.0
        jet_a[1, i] = 1.0
        degree = 1
    else:
        code = codes[u]
        param = net.act_params[u]
        if _breaks_at_zero(code):
            if not r < abs(z) * SAFETY:
                return False
        elif not is_piecewise_linear(code) and r > _jet_reach(code, param):
            return False
        activation_jet(code, param, z, w, act, y, q)
        m = masks[node_off[u] + b * sizes[u] + i]
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
            row = node_off[k] + b * sizes[k]
            code = codes[k]
            param = net.act_params[k]
            kinked = _breaks_at_zero(code)
            smooth = not is_piecewise_linear(code)
            limit = _jet_reach(code, param)
            for p in range(sizes[k]):
                if masks[row + p] == 0.0:
                    # every order: a smooth layer reads orders beyond the current degree
                    for d in range(1, ORDER + 1):
                        jet_a[d, p] = 0.0
                    continue
                for d in range(1, degree + 1):
                    w[d] = jet_a[d, p]
                moved = reach(w, r)
                if kinked:
                    if not moved < abs(pre[row + p]) * SAFETY:
                        return False
                elif smooth and moved > limit:
                    return False
                activation_jet(code, param, pre[row + p], w, act, y, q)
                m_p = masks[row + p]
                for d in range(1, degree + 1):
                    jet_a[d, p] = m_p * act[d]
                if smooth:
                    for d in range(degree + 1, ORDER + 1):
                        jet_a[d, p] = m_p * act[d]
            if smooth:
                degree = ORDER
            n_in = sizes[k]
            for d in range(1, degree + 1):
                for p in range(sizes[k + 1]):
                    w_row = w_off[k + 1] + p * n_in
                    total = 0.0
                    for c in range(n_in):
                        total += theta[w_row + c] * jet_a[d, c]
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
    logits = pre[node_off[n_layers] + b * n_out : node_off[n_layers] + (b + 1) * n_out]
    loss_jet(
        loss_code,
        logits,
        head.prob[b],
        head.targets[b],
        jet_a[:, :n_out],
        out,
        scratch.e,
        scratch.s,
        scratch.log,
    )
    return tail_fits(out, r, ORDER)


@jit(entry=False, refcount=False)
def tail_fits(series, r, top):
    """Whether a loss series kept to order ``top`` may be used for ``|g| <= r``.

    The tail test: the terms of orders ``top - 1`` and ``top`` together are
    at most :data:`TAIL` of ``sum_n |G_n| r^n`` (``n = 1 .. top``). Within
    :data:`JET_REACH` each term is at most ``6.4e-5`` of the one before, so
    the terms not kept cannot show in float64.
    """
    total = 0.0
    tail = 0.0
    power = 1.0
    for d in range(1, top + 1):
        power *= r
        term = abs(series[d]) * power
        total += term
        if d >= top - 1:
            tail += term
    return tail <= TAIL * total


@jit(entry=False, refcount=False)
def series_path(b, e0, e1, entry_input, epsilon, series, a_in, nonzero_ptr, nonzero_index, diff):
    """Path 1: add ``loss_b(+) - loss_b(-)`` of entries ``e0:e1`` from the unit's series.

    ``series`` holds the coefficients ``G_n`` from :func:`unit_series`;
    ``a_in`` is ``A_{u-1}``, and ``nonzero_index[nonzero_ptr[b]:nonzero_ptr[b
    + 1]]`` lists its nonzero inputs of sample ``b``. Entry ``e`` moves the
    unit by ``g = eps A_{u-1}[b, j]`` (``eps`` for the bias, ``j = n_in``),
    so its difference is ``G(g) - G(-g) = 2 (G1 g + G3 g^3 + G5 g^5 + G7
    g^7)``, added to ``diff[e]``. A whole row of a sparse input visits only
    the nonzero inputs: the others contribute exactly 0.

    Returns
    -------
    int
        The entries evaluated (none when the unit's series is 0).
    """
    c1 = 2.0 * series[1]
    c3 = 2.0 * series[3]
    c5 = 2.0 * series[5]
    c7 = 2.0 * series[7]
    if c1 == 0.0 and c3 == 0.0 and c5 == 0.0 and c7 == 0.0:
        return 0
    n_in = a_in.shape[1]
    first = nonzero_ptr[b]
    last = nonzero_ptr[b + 1]
    if e1 - e0 == n_in + 1:
        # a whole row: entry e0 + j is input j, the bias last
        if 2 * (last - first) < n_in:
            for k in range(first, last):
                j = nonzero_index[k]
                g = epsilon * a_in[b, j]
                g2 = g * g
                diff[e0 + j] += g * (c1 + g2 * (c3 + g2 * (c5 + g2 * c7)))
            counted = last - first + 1
        else:
            # inputs in order, without the entry table: a loop the compiler vectorizes
            row = a_in[b]
            # a view indexed from 0: indices the compiler knows are not negative
            out = diff[e0 : e0 + n_in]
            for j in range(n_in):
                g = epsilon * row[j]
                g2 = g * g
                out[j] += g * (c1 + g2 * (c3 + g2 * (c5 + g2 * c7)))
            counted = e1 - e0
        g = epsilon
        g2 = g * g
        diff[e1 - 1] += g * (c1 + g2 * (c3 + g2 * (c5 + g2 * c7)))
        return counted
    for e in range(e0, e1):
        j = entry_input[e]
        g = epsilon if j == n_in else epsilon * a_in[b, j]
        g2 = g * g
        diff[e] += g * (c1 + g2 * (c3 + g2 * (c5 + g2 * c7)))
    return e1 - e0
