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
   (:func:`~fastgrad.kernels.suffix.unit_series`, :mod:`fastgrad.kernels.jets`) and each input ``j``
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

import numba
import numpy as np

from ._jit import jit
from .activations import difference, is_kinked, is_piecewise_linear
from .dense import node_block
from .jets import ORDER
from .propagate import carry_unit_change
from .series import DEGREE, evaluate, line_coefficients, odd_difference
from .suffix import SAFETY, line_direction, unit_series

COLUMNS = 32
"""Evaluations carried together through the exact path."""


@jit()
def _lane(lane, lanes, tasks, t_start, t_stop, net, loss_code, epsilon, diff_out, kinks_out):
    """Run one lane's share of :func:`centered_differences`.

    The lane takes tasks ``t_start + lane``, ``t_start + lane + lanes``, ...
    and allocates its scratch once.
    """
    task_layer, task_unit, entry_ptr, entry_input = tasks
    theta, w_off, wt, sizes, codes, masks, node_off, acts, pre, prob, targets = net[:11]
    bernoulli, reach_in, nonzero_ptr, nonzero_index = net[11:]
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
    jets = (
        np.zeros((ORDER + 1, width)),
        np.zeros((ORDER + 1, width)),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
    )
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
            if unit_series(u, i, b, epsilon * reach_in[u - 1, b], net, loss_code, jets, series):
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
                radius = line_direction(u, i, b, net, v_a, v_b, direction)
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
                carry_unit_change(
                    u, i, b, 2 * (last - first), s_col, net, loss_code, dz_a, dz_b, f_out, crossed
                )
                for f in range(first, last):
                    e = fallback[f]
                    x = e - e0
                    c = 2 * (f - first)
                    diff_out[e] += f_out[c] - f_out[c + 1]
                    kinks_out[e] += (kink_plus[x] or crossed[c]) + (kink_minus[x] or crossed[c + 1])


@jit(parallel=True)
def centered_differences(
    tasks, t_start, t_stop, lanes, net, loss_code, epsilon, diff_out, kinks_out
):
    """Sum over the batch of per-sample centered differences, for tasks ``t_start:t_stop``.

    Parameters
    ----------
    tasks : tuple of int64 arrays
        ``(task_layer, task_unit, entry_ptr, entry_input)``. Task ``t``
        perturbs row ``task_unit[t]`` of the weight and bias producing node
        layer ``task_layer[t]``; it owns entries ``entry_ptr[t]:entry_ptr[t +
        1]``, and entry ``e`` perturbs input ``entry_input[e]`` of its row
        (``sizes[u - 1]`` for the bias).
    t_start, t_stop : int
        The tasks to run.
    lanes : int
        Tasks are dealt round-robin to this many parallel lanes (the number
        of threads); it does not change the results.
    net : tuple of arrays
        ``(theta, w_off, wt, sizes, codes, masks, node_off, acts, pre, prob,
        targets, bernoulli, reach_in, nonzero_ptr, nonzero_index)``: the
        network after its forward pass (see :mod:`fastgrad.kernels.dense`);
        ``wt``, the weights transposed, each at its weight's offset; ``prob``
        and ``targets``, ``(batch, n_out)`` output probabilities and targets;
        ``bernoulli``, ``(batch, n_out, DEGREE + 1)`` Bernoulli cumulants for
        binary cross-entropy; ``reach_in``, ``(n_layers, batch)``, the largest
        input ``max(1, max_j |A_u[b, j]|)`` of each layer and sample (the
        bias counts as 1); ``nonzero_index[nonzero_ptr[u, b]:nonzero_ptr[u,
        b + 1]]``, the ``j`` with ``A_u[b, j] != 0``
        (:mod:`fastgrad.kernels.tables` builds the last five).
    loss_code : int
        Loss code.
    epsilon : float
        Step.
    diff_out : ndarray
        Output: ``sum_b loss_b(+) - loss_b(-)`` per entry.
    kinks_out : int64 ndarray
        Output: number of evaluations per entry that crossed a kink.
    """
    for lane in numba.prange(lanes):
        _lane(lane, lanes, tasks, t_start, t_stop, net, loss_code, epsilon, diff_out, kinks_out)


@jit()
def centered_differences_serial(
    tasks, t_start, t_stop, net, loss_code, epsilon, diff_out, kinks_out
):
    """Run :func:`centered_differences` on the calling thread.

    For work too small to repay starting the parallel threads.
    """
    _lane(0, 1, tasks, t_start, t_stop, net, loss_code, epsilon, diff_out, kinks_out)
