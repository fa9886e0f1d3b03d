"""The parallel centered-difference kernel of a dense network.

For every requested parameter ``theta_i`` it computes, sample by sample,
``loss_b(theta + eps e_i) - loss_b(theta - eps e_i)`` exactly (to rounding),
and sums over the batch. It never runs a full forward pass per parameter:

1. The unperturbed pass is computed once; the layers before the perturbed
   one are untouched by the perturbation.
2. Perturbing ``W_u[i, j]`` by ``eps`` moves one pre-activation,
   ``Z_u[b, i]``, by ``g = eps * a_{u-1}[b, j]`` (a bias: by ``eps``).
3. Small steps (the common case): per unit and sample, the loss change as a
   function of ``g`` is carried as a power series through every later layer
   (:func:`_unit_jet`, :mod:`fastgrad.kernels.jets`) and each input ``j``
   costs an odd polynomial in ``g_j``; zero inputs are skipped. Used only
   where no unit can reach a kink and every series converges fast.
4. Otherwise, entry by entry: the activation moves by
   ``s = M_u[b, i] (phi(z + g) - phi(z))``, computed by the cancellation-free
   :func:`~fastgrad.kernels.activations.difference` (exactly zero for a
   unit dead at both signs, which is skipped). When every later hidden layer
   is piecewise linear and none of its units changes side, the logits move
   along a line ``z + s v`` and the loss along it is a short series
   (:mod:`fastgrad.kernels.series`); otherwise the change is carried exactly
   through the remaining layers as differences of activations
   (:mod:`fastgrad.kernels.propagate`) and the loss change is formed with
   ``expm1`` and ``log1p``. That is also where kinks are found: an evaluation
   in which a relu or leaky relu pre-activation lands on the other side of
   zero than in the unperturbed pass is counted as a kink crossing.

Work is split into tasks, one per (layer, unit) with its list of requested
inputs; each task writes only its own entries of the outputs and sums over
the batch in sample order, so results do not depend on the thread count.
"""

import math

import numba
import numpy as np

from ._jit import jit
from .activations import (
    ELU,
    LEAKY_RELU,
    RELU,
    derivative,
    difference,
    is_kinked,
    is_piecewise_linear,
)
from .dense import node_block, weight_view
from .jets import ORDER, activation_jet, loss_jet, reach
from .losses import MSE
from .propagate import carry_to_loss
from .series import DEGREE, evaluate, line_coefficients, odd_difference

COLUMNS = 32
"""Evaluations carried together through the exact path."""

SAFETY = 1.0 - 1e-9
"""Margin on the radius inside which no unit changes side."""

JET_REACH = 1e-4
"""How far a smooth unit or a logit may move for the series to be used."""

TAIL = 1e-17
"""Largest share of the last two terms kept in the loss's series."""


@jit()
def _line_direction(
    u, i, b, theta, w_off, wt, sizes, codes, masks, node_off, pre, v_a, v_b, direction
):
    """Write into ``direction`` how the logits move per unit change of ``A_u[b, i]``.

    Assumes every hidden layer after ``u`` is piecewise linear. Returns the
    largest change for which no kinked unit of those layers changes side.
    """
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
def _exact_suffix(
    u,
    i,
    b,
    n_cols,
    s_col,
    theta,
    w_off,
    wt,
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
    """Carry activation changes ``s_col`` of unit ``(u, i)`` to the loss of sample ``b``.

    Writes the loss change of each column into ``f_out`` and whether any
    kinked unit changed side into ``crossed``.
    """
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


@jit()
def _is_kinked_for_jets(code):
    """Whether a unit's series breaks where its pre-activation crosses 0."""
    return code == RELU or code == LEAKY_RELU or code == ELU


@jit()
def _unit_jet(
    u,
    i,
    b,
    r,
    theta,
    w_off,
    wt,
    sizes,
    codes,
    masks,
    node_off,
    pre,
    prob,
    targets,
    loss_code,
    jet_a,
    jet_b,
    w,
    act,
    y,
    q,
    e,
    s,
    log,
    out,
):
    """Fill ``out`` with the series in ``g`` of ``loss_b`` when ``Z_u[b, i]`` moves by ``g``.

    Returns False, leaving ``out`` meaningless, when the series cannot be
    trusted for ``|g| <= r``: a kinked unit could change side, a smooth
    unit or the loss could move beyond :data:`JET_REACH`, or the last terms
    kept are not negligible.
    """
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
        if _is_kinked_for_jets(code):
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
            kinked = _is_kinked_for_jets(code)
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


@jit()
def _lane(
    lane,
    lanes,
    task_layer,
    task_unit,
    entry_ptr,
    entry_input,
    t_start,
    t_stop,
    epsilon,
    theta,
    w_off,
    wt,
    sizes,
    codes,
    masks,
    node_off,
    acts,
    pre,
    prob,
    targets,
    loss_code,
    bernoulli,
    reach_in,
    nonzero_ptr,
    nonzero_index,
    diff_out,
    kinks_out,
):
    """Run one lane's share of :func:`centered_differences`.

    The lane takes tasks ``t_start + lane``, ``t_start + lane + lanes``, ...
    and allocates its scratch once.
    """
    n_layers = sizes.shape[0] - 1
    n_out = sizes[n_layers]
    logits = node_block(pre, node_off, sizes, n_layers)
    batch = targets.shape[0]
    width = 1
    for u in range(n_layers + 1):
        width = max(width, sizes[u])
    s_plus = np.empty(width + 1)
    s_minus = np.empty(width + 1)
    kink_plus = np.zeros(width + 1, dtype=np.bool_)
    kink_minus = np.zeros(width + 1, dtype=np.bool_)
    fallback = np.empty(width + 1, dtype=np.int64)
    v_a = np.empty(width)
    v_b = np.empty(width)
    direction = np.empty(width)
    coef = np.zeros(DEGREE + 1)
    mu = np.zeros(DEGREE + 1)
    kappa = np.zeros(DEGREE + 1)
    dz_a = np.empty((COLUMNS, width))
    dz_b = np.empty((COLUMNS, width))
    s_col = np.empty(COLUMNS)
    f_out = np.empty(COLUMNS)
    crossed = np.empty(COLUMNS, dtype=np.bool_)
    jet_a = np.zeros((ORDER + 1, width))
    jet_b = np.zeros((ORDER + 1, width))
    jet_w = np.zeros(ORDER + 1)
    jet_act = np.zeros(ORDER + 1)
    jet_y = np.zeros(ORDER + 1)
    jet_q = np.zeros(ORDER + 1)
    jet_e = np.zeros(ORDER + 1)
    jet_s = np.zeros(ORDER + 1)
    jet_log = np.zeros(ORDER + 1)
    series = np.zeros(ORDER + 1)
    for t in range(t_start + lane, t_stop, lanes):
        u = task_layer[t]
        i = task_unit[t]
        e0 = entry_ptr[t]
        e1 = entry_ptr[t + 1]
        n_in = sizes[u - 1]
        hidden = u < n_layers
        code = codes[u]
        kinked = hidden and is_kinked(code)
        on_line = True
        for k in range(u + 1, n_layers):
            if not is_piecewise_linear(codes[k]):
                on_line = False
        a_in = node_block(acts, node_off, sizes, u - 1)
        z_u = node_block(pre, node_off, sizes, u)
        m_u = node_block(masks, node_off, sizes, u)
        for e in range(e0, e1):
            diff_out[e] = 0.0
            kinks_out[e] = 0
        for b in range(batch):
            m = m_u[b, i] if hidden else 1.0
            if m == 0.0:
                continue
            if _unit_jet(
                u,
                i,
                b,
                epsilon * reach_in[u - 1, b],
                theta,
                w_off,
                wt,
                sizes,
                codes,
                masks,
                node_off,
                pre,
                prob,
                targets,
                loss_code,
                jet_a,
                jet_b,
                jet_w,
                jet_act,
                jet_y,
                jet_q,
                jet_e,
                jet_s,
                jet_log,
                series,
            ):
                # loss_b(g) - loss_b(-g) = 2 (G1 g + G3 g^3 + G5 g^5 + G7 g^7)
                c1 = 2.0 * series[1]
                c3 = 2.0 * series[3]
                c5 = 2.0 * series[5]
                c7 = 2.0 * series[7]
                if c1 == 0.0 and c3 == 0.0 and c5 == 0.0 and c7 == 0.0:
                    continue
                first = nonzero_ptr[u - 1, b]
                last = nonzero_ptr[u - 1, b + 1]
                if e1 - e0 == n_in + 1 and 2 * (last - first) < n_in:
                    # a whole row of a sparse input: zero inputs contribute exactly 0
                    for t in range(first, last):
                        j = nonzero_index[t]
                        g = epsilon * a_in[b, j]
                        g2 = g * g
                        diff_out[e0 + j] += g * (c1 + g2 * (c3 + g2 * (c5 + g2 * c7)))
                    g = epsilon
                    g2 = g * g
                    diff_out[e1 - 1] += g * (c1 + g2 * (c3 + g2 * (c5 + g2 * c7)))
                    continue
                for e in range(e0, e1):
                    j = entry_input[e]
                    g = epsilon if j == n_in else epsilon * a_in[b, j]
                    g2 = g * g
                    diff_out[e] += g * (c1 + g2 * (c3 + g2 * (c5 + g2 * c7)))
                continue
            z = z_u[b, i]
            side = z > 0.0
            moved = False
            for e in range(e0, e1):
                j = entry_input[e]
                g = epsilon if j == n_in else epsilon * a_in[b, j]
                x = e - e0
                if hidden:
                    sp = m * difference(code, z, g)
                    sm = m * difference(code, z, -g)
                    kink_plus[x] = kinked and ((z + g > 0.0) != side)
                    kink_minus[x] = kinked and ((z - g > 0.0) != side)
                else:
                    sp = g
                    sm = -g
                s_plus[x] = sp
                s_minus[x] = sm
                moved = moved or sp != 0.0 or sm != 0.0
            if not moved:
                continue
            n_fallback = 0
            if on_line:
                radius = _line_direction(
                    u,
                    i,
                    b,
                    theta,
                    w_off,
                    wt,
                    sizes,
                    codes,
                    masks,
                    node_off,
                    pre,
                    v_a,
                    v_b,
                    direction,
                )
                reach = line_coefficients(
                    loss_code,
                    logits[b],
                    prob[b],
                    targets[b],
                    direction[:n_out],
                    bernoulli[b % bernoulli.shape[0]],
                    mu,
                    kappa,
                    coef,
                )
                limit = min(radius * SAFETY, reach)
                for e in range(e0, e1):
                    x = e - e0
                    sp = s_plus[x]
                    sm = s_minus[x]
                    if sp == 0.0 and sm == 0.0:
                        continue
                    if abs(sp) < limit and abs(sm) < limit:
                        if sm == -sp:
                            diff_out[e] += odd_difference(coef, sp)
                        else:
                            diff_out[e] += evaluate(coef, sp) - evaluate(coef, sm)
                        kinks_out[e] += kink_plus[x] + kink_minus[x]
                    else:
                        fallback[n_fallback] = e
                        n_fallback += 1
            else:
                for e in range(e0, e1):
                    x = e - e0
                    if s_plus[x] != 0.0 or s_minus[x] != 0.0:
                        fallback[n_fallback] = e
                        n_fallback += 1
            half = COLUMNS // 2
            for first in range(0, n_fallback, half):
                last = min(n_fallback, first + half)
                for f in range(first, last):
                    x = fallback[f] - e0
                    s_col[2 * (f - first)] = s_plus[x]
                    s_col[2 * (f - first) + 1] = s_minus[x]
                _exact_suffix(
                    u,
                    i,
                    b,
                    2 * (last - first),
                    s_col,
                    theta,
                    w_off,
                    wt,
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
                for f in range(first, last):
                    e = fallback[f]
                    x = e - e0
                    c = 2 * (f - first)
                    diff_out[e] += f_out[c] - f_out[c + 1]
                    kinks_out[e] += (kink_plus[x] or crossed[c]) + (kink_minus[x] or crossed[c + 1])


@jit(parallel=True)
def centered_differences(
    task_layer,
    task_unit,
    entry_ptr,
    entry_input,
    t_start,
    t_stop,
    lanes,
    epsilon,
    theta,
    w_off,
    wt,
    sizes,
    codes,
    masks,
    node_off,
    acts,
    pre,
    prob,
    targets,
    loss_code,
    bernoulli,
    reach_in,
    nonzero_ptr,
    nonzero_index,
    diff_out,
    kinks_out,
):
    """Sum over the batch of per-sample centered differences, for tasks ``t_start:t_stop``.

    Parameters
    ----------
    task_layer, task_unit : int64 arrays
        Task ``t`` perturbs row ``task_unit[t]`` of the weight and bias
        producing node layer ``task_layer[t]``.
    entry_ptr, entry_input : int64 arrays
        Task ``t`` owns entries ``entry_ptr[t]:entry_ptr[t + 1]``; entry ``e``
        perturbs input ``entry_input[e]`` of its row (``sizes[u - 1]`` for the
        bias).
    t_start, t_stop : int
        The tasks to run.
    lanes : int
        Tasks are dealt round-robin to this many parallel lanes (the number
        of threads); it does not change the results.
    epsilon : float
        Step.
    theta, w_off, sizes, codes, masks, node_off, acts, pre
        The network after its forward pass (see :mod:`fastgrad.kernels.dense`).
    wt : ndarray
        The weights transposed, each at its weight's offset.
    prob, targets : ndarray
        ``(batch, n_out)`` output probabilities and targets.
    loss_code : int
        Loss code.
    bernoulli : ndarray
        ``(batch, n_out, DEGREE + 1)`` Bernoulli cumulants for binary
        cross-entropy (unused otherwise).
    reach_in : ndarray
        ``(n_layers, batch)``: ``max(1, max_j |A_u[b, j]|)``, the largest
        input (the bias counts as 1) of each layer for each sample.
    nonzero_ptr, nonzero_index : int64 ndarrays
        The nonzero inputs of each layer and sample: ``nonzero_index[
        nonzero_ptr[u, b]:nonzero_ptr[u, b + 1]]`` are the ``j`` with
        ``A_u[b, j] != 0``.
    diff_out : ndarray
        Output: ``sum_b loss_b(+) - loss_b(-)`` per entry.
    kinks_out : int64 ndarray
        Output: number of evaluations per entry that crossed a kink.
    """
    for lane in numba.prange(lanes):
        _lane(
            lane,
            lanes,
            task_layer,
            task_unit,
            entry_ptr,
            entry_input,
            t_start,
            t_stop,
            epsilon,
            theta,
            w_off,
            wt,
            sizes,
            codes,
            masks,
            node_off,
            acts,
            pre,
            prob,
            targets,
            loss_code,
            bernoulli,
            reach_in,
            nonzero_ptr,
            nonzero_index,
            diff_out,
            kinks_out,
        )


@jit()
def centered_differences_serial(
    task_layer,
    task_unit,
    entry_ptr,
    entry_input,
    t_start,
    t_stop,
    epsilon,
    theta,
    w_off,
    wt,
    sizes,
    codes,
    masks,
    node_off,
    acts,
    pre,
    prob,
    targets,
    loss_code,
    bernoulli,
    reach_in,
    nonzero_ptr,
    nonzero_index,
    diff_out,
    kinks_out,
):
    """Run :func:`centered_differences` on the calling thread.

    For work too small to repay starting the parallel threads.
    """
    _lane(
        0,
        1,
        task_layer,
        task_unit,
        entry_ptr,
        entry_input,
        t_start,
        t_stop,
        epsilon,
        theta,
        w_off,
        wt,
        sizes,
        codes,
        masks,
        node_off,
        acts,
        pre,
        prob,
        targets,
        loss_code,
        bernoulli,
        reach_in,
        nonzero_ptr,
        nonzero_index,
        diff_out,
        kinks_out,
    )
