"""The series path for all units of a layer at once: the elementwise steps.

:func:`fastgrad.kernels.unit_series.unit_series` carries the jet of one
unit's step through the later layers one matrix-vector product per order
and layer. For a layer whose later hidden layers are all smooth, the jets of
all its units (for a block of samples) can instead be carried together: the
jets of every unit and order at node layer ``k`` are the columns of one
matrix, ``X_k[q, s, n - 1, i]`` the ``n``-th coefficient of the change of
``Z_k[b0 + s, q]`` when unit ``i`` of the perturbed layer moves by ``g``,
and the next layer's jets are one matrix product ``W_{k+1} X_k`` (done by the
caller, :mod:`fastgrad._layer_series`, at the speed of the matrix product).
The functions here are the elementwise steps between the products:

- :func:`start_jets`: each unit's own activation jet, times its outgoing
  weights;
- :func:`activate_jets`: the activation jets of a hidden layer, in place;
- :func:`finish_jets`: the loss jets and the tail test.

Every test of :func:`~fastgrad.kernels.unit_series.unit_series` is made
here for each (unit, sample) with the same constants (``JET_REACH``,
``SAFETY``, ``TAIL``), so a (unit, sample) is ready here exactly when the
one-unit path would accept it, up to the rounding of the products. Each
(unit, sample) is written by one thread only: the results do not depend on
the number of threads.
"""

import math

import numba
import numpy as np

from ._jit import jit
from .activations import ELU, SIGMOID, TANH, is_piecewise_linear, sigmoid_pair
from .dense import node_block, weight_view
from .jets import ORDER, activation_jet, loss_jet, reach
from .losses import CROSS_ENTROPY, MSE
from .unit_series import JET_REACH, SAFETY, TAIL, _breaks_at_zero, _jet_reach, tail_fits

ACTIVE, READY, REFUSED, SKIP, SHORT = 0, 1, 2, 3, 4
"""States of a (unit, sample): still being carried, series ready, series refused, not
asked for in this pass, refused by the tail test only (a higher order may pass it)."""

BLOCK = 8
"""Units per parallel work item of :func:`finish_jets`."""

ODD_ORDER = 3
"""The lowest order of a series whose tail is bounded by :func:`odd_tail_fits` instead of
:func:`~fastgrad.kernels.unit_series.tail_fits`: the centered difference reads only odd terms,
and past order 3 the next one it reads is the fifth. Every odd order below ``ORDER`` is
bounded so; ``ORDER`` itself by :func:`~fastgrad.kernels.unit_series.tail_fits`."""

CIRCLE = math.pi / 8
"""Largest scaled move, at ``|g| = r / q``, of the first-order parts of the units' and logits'
moves on the circle where :func:`odd_tail_fits` bounds the loss series: a sixteenth of the
smallest circle of convergence around a real point (``pi / 2``), so that with the higher orders
every argument stays within a third of it."""


@jit(entry=False, refcount=False, inline=True)
def scaled_move(moved, smooth_reach):
    """Return a move in units of the smallest circle of convergence, ``pi / 2``.

    ``smooth_reach`` is the unit's :func:`~fastgrad.kernels.unit_series._jet_reach`:
    ``JET_REACH`` for the codes whose series converge in a disc of radius at least ``pi / 2``
    (tanh, sigmoid, elu), ``JET_REACH / beta`` for softplus, whose disc is ``beta`` times
    smaller; a move scaled so compares with ``pi / 2`` for every code.
    """
    return moved * (JET_REACH / smooth_reach)


@jit(entry=False, refcount=False)
def odd_tail_fits(series, r, move, top):
    """Whether a loss series kept to odd order ``top`` may be used for centered differences.

    The centered difference reads ``G(g) - G(-g) = 2 (G1 g + G3 g^3 + G5 g^5 + ...)``: the even
    terms cancel exactly, so a series kept to order ``top`` (3 or 5) misses only the odd terms
    from ``top + 2`` on, at ``|g| <= r``. They are bounded by Cauchy's estimate. ``move`` is the
    largest scaled move (:func:`scaled_move`) at ``|g| = r``, ``sum_n |w_n| r^n`` over the
    orders kept, of the perturbed unit, of every later unit and of every logit (not for mse,
    whose loss is a polynomial of the logits). Every function applied on the way (tanh, sigmoid,
    softplus scaled by its ``beta``, elu's branch, the log-sum-exp and ``log(1 + p (e^w - 1))``
    of the losses) is analytic in a disc of radius at least ``pi / 2`` around each real point,
    per argument. With ``q = move / CIRCLE``, the first-order parts of all moves are at most
    ``CIRCLE = pi / 8`` on the circle ``|g| = r / q``; the terms past the first, which the reach
    tests keep below ``JET_REACH / (pi / 2) ~ 6.4e-5`` of the first at ``|g| = r``, are then at
    most a geometric series of ratio 1/4 of it, so every argument stays within ``pi / 6`` of its
    real point, a third of its disc, and ``G`` is analytic and bounded on the closed disc ``|g|
    <= r / q``: ``|G(g) - G(0)| <= M`` there, and Cauchy's estimate gives ``|G_n| r^n <= M q^n``
    for every ``n``. ``M`` is taken as twice what the kept terms reach on that circle, ``M = 2
    sum_{n <= top} |G_n| r^n q^-n`` (within a third of its disc a function's change is its
    first-order part to within a factor 2, as is the sum of the terms kept). The odd tail at
    ``|g| <= r`` is then at most ``M (q^(top + 2) + q^(top + 4) + ...) = M q^(top + 2) / (1 -
    q^2)``, and the series is accepted when that is at most ``TAIL`` of ``sum_{n <= top} |G_n|
    r^n``, the whole of :func:`~fastgrad.kernels.unit_series.tail_fits`:

        ``2 sum_{n <= top} |G_n| r^n q^(top + 2 - n) / (1 - q^2) <= TAIL sum_{n <= top} |G_n| r^n``.

    At the default step and inputs of unit scale, moves of about 1e-6 give ``q ~ 3e-6`` and, at
    order 3, a bound about ``1e-21`` of the whole (``1e-17`` where ``G1`` vanishes and ``G2``
    leads), far inside ``TAIL``; at order 5 the bound is ``2 q^6`` of the whole where ``G1``
    leads, below ``TAIL`` for every move the reach tests allow (``q <= 2.5e-4``). What order 3
    refuses is carried again to order 5, and what that refuses with every order, held to
    :func:`~fastgrad.kernels.unit_series.tail_fits` on the terms themselves.
    """
    q = move / CIRCLE
    if not q < 1.0:
        return False
    whole = 0.0
    tail = 0.0
    power = 1.0
    for n in range(1, top + 1):
        power *= r
        term = abs(series[n]) * power
        whole += term
        tail += term * q ** (top + 2 - n)
    return 2.0 * tail / (1.0 - q * q) <= TAIL * whole


@jit()
def batched(u, codes):
    """Whether the units of node layer ``u`` can be carried together.

    They can when ``u`` and every later hidden layer are smooth (not
    piecewise linear): every jet then keeps all its orders.
    """
    n_layers = codes.shape[0] - 1
    if u < 1 or u >= n_layers:
        return False
    for k in range(u, n_layers):
        if is_piecewise_linear(codes[k]):
            return False
    return True


@jit(entry=False, refcount=False, inline=True)
def gathers_cubic(adjoint):
    """Whether the series' order past the jets is gathered by adjoints (not ``(0, 0)``)."""
    return adjoint.shape[0] > 0


@jit()
def logit_adjoints(head, loss_code, logits, out):
    """Write ``dloss_b / dZ_L[b]``, the logits' adjoints of each sample's loss, into ``out``.

    The first order of :func:`~fastgrad.kernels.jets.loss_jet`: ``W prob - y`` for softmax
    cross-entropy (``W = sum_c y_c``), ``prob - y`` for binary cross-entropy and for mse
    (whose ``prob`` is the logits themselves); ``logits`` and ``out`` are ``(batch,
    n_out)``. A probability above 1/2 is not subtracted from its target: ``W p_c - y_c =
    (W - y_c) - W (1 - p_c)``, with ``1 - p_c`` the sum of the other classes' probabilities
    (softmax) or ``sigmoid(-z_c)``, so that a confident prediction's small adjoint is
    accurate.
    """
    prob = head.prob
    targets = head.targets
    for b in range(out.shape[0]):
        weight = 1.0
        if loss_code == CROSS_ENTROPY:
            weight = 0.0
            for c in range(out.shape[1]):
                weight += targets[b, c]
        for c in range(out.shape[1]):
            p = prob[b, c]
            if loss_code == MSE or not p > 0.5:
                out[b, c] = weight * p - targets[b, c]
                continue
            if loss_code == CROSS_ENTROPY:
                rest = 0.0
                for k in range(out.shape[1]):
                    if k != c:
                        rest += prob[b, k]
            else:
                rest = sigmoid_pair(logits[b, c])[1]
            gap = weight - targets[b, c]
            # apart: the compiler may reassociate (W - y) - W r into (W - W r) - y
            out[b, c] = -weight * rest if gap == 0.0 else gap - weight * rest


@jit(parallel=True)
def start_jets(u, units, b0, radius, net, jets, state, moves, adjoint, cubic):
    """Fill ``jets[:, s, :, i]``, the jets of ``Z_{u+1}[b0 + s]`` when unit ``units[i]`` moves.

    Parameters
    ----------
    u : int
        The perturbed node layer (hidden).
    units : ndarray of int64
        ``(U,)`` the units of layer ``u`` carried.
    b0 : int
        First sample of the block.
    radius : ndarray
        ``(S,)`` the largest ``|g|`` of each sample, ``r = eps max(1, max_j |A_{u-1}[b, j]|)``.
    net : Network
        The network after its forward pass.
    jets : ndarray
        Output ``(sizes[u + 1], S, top, U)``: the jets to order ``top <= ORDER``.
    state : ndarray of int8
        ``(S, U)``: on entry :data:`ACTIVE` for the (unit, sample) pairs
        wanted, :data:`SKIP` for the others; on exit :data:`READY` for a
        unit whose activation does not move (its series is 0) and
        :data:`REFUSED` for one that could reach its kink or move too far.
    moves : ndarray
        ``(S, U)`` output: the unit's own move ``r``, scaled (:func:`scaled_move`).
    adjoint : ndarray
        ``(batch, sizes[u])``, ``dloss_b / d(M_u A_u)[b]`` (:func:`logit_adjoints` carried
        back) when the order ``top + 1`` of the series is gathered by adjoints
        (:func:`gathers_cubic`), else ``(0, 0)``.
    cubic : ndarray
        ``(S, U)`` output when gathering: the unit's own share of that order, its adjoint
        times ``M_u`` times order ``top + 1`` of its activation's jet.
    """
    sizes = net.sizes
    code = net.codes[u]
    param = net.act_params[u]
    smooth_reach = _jet_reach(code, param)
    pre = node_block(net.pre, net.node_off, sizes, u)
    mask = node_block(net.masks, net.node_off, sizes, u)
    weight = weight_view(net.theta, net.w_off, sizes, u + 1)
    n_next = sizes[u + 1]
    n_units = units.shape[0]
    n_samples = radius.shape[0]
    order = jets.shape[2]
    gather = gathers_cubic(adjoint)
    # each unit's own activation jet, times its dropout multiplier
    acts = np.zeros((n_samples, order, n_units))
    for s in numba.prange(n_samples):
        w = np.zeros(ORDER + 1)
        act = np.zeros(ORDER + 1)
        y = np.zeros(ORDER + 1)
        q = np.zeros(ORDER + 1)
        w[1] = 1.0
        b = b0 + s
        r = radius[s]
        for i in range(n_units):
            moves[s, i] = scaled_move(r, smooth_reach)
            if state[s, i] != ACTIVE:
                continue
            unit = units[i]
            z = pre[b, unit]
            if _breaks_at_zero(code):
                fits = r < abs(z) * SAFETY
            else:
                fits = r <= smooth_reach
            if not fits:
                state[s, i] = REFUSED
                continue
            activation_jet(code, param, z, w, act, y, q)
            m = mask[b, unit]
            still = True
            for d in range(1, order + 1):
                acts[s, d - 1, i] = m * act[d]
                still = still and m * act[d] == 0.0
            if gather:
                cubic[s, i] = adjoint[b, unit] * (m * act[order + 1])
                still = still and m * act[order + 1] == 0.0
            state[s, i] = READY if still else ACTIVE
    # times the unit's outgoing weights
    for p in numba.prange(n_next):
        row = np.empty(n_units)  # the weights gathered once: the loops below run contiguous
        for i in range(n_units):
            row[i] = weight[p, units[i]]
        for s in range(n_samples):
            for d in range(order):
                out = jets[p, s, d]
                act = acts[s, d]
                for i in range(n_units):
                    out[i] = act[i] * row[i]


@jit()
def _derivative_rule(w, factor, out, order, n):
    """Set order ``order`` of ``n`` jets of ``y`` with ``y' = factor · w'``, one per column.

    ``out[order, c] = (1/order) Σ_k k w[k, c] factor[order - k, c]``, the
    coefficient recurrence of Taylor-mode differentiation (``factor`` may be
    ``out`` itself: the exponential's ``E' = E w'``).
    """
    for c in range(n):
        out[order, c] = 0.0
    for k in range(1, order + 1):
        for c in range(n):
            out[order, c] += k * w[k, c] * factor[order - k, c]
    inverse = 1.0 / order
    for c in range(n):
        out[order, c] *= inverse


@jit()
def _tanh_like_rows(w, y0, q0, quadratic, linear, y, q, n, top):
    """:func:`fastgrad.kernels.jets._tanh_like` for ``n`` jets at once, one per column.

    ``w[d, :n]`` holds order ``d`` of each jet (``d = 1 .. top``); ``y``,
    ``q`` are ``(ORDER + 1, n)`` outputs, ``y[0]``, ``q[0]`` the constants.
    """
    for c in range(n):
        y[0, c] = y0
        q[0, c] = q0
    for order in range(1, top + 1):
        _derivative_rule(w, q, y, order, n)
        for c in range(n):
            q[order, c] = 0.0
        for a in range(order + 1):
            for c in range(n):
                q[order, c] += y[a, c] * y[order - a, c]
        for c in range(n):
            q[order, c] = linear * y[order, c] - quadratic * q[order, c]


@jit()
def _exp_rows(w, e0, out, n, top):
    """:func:`fastgrad.kernels.jets.exp_jet` for ``n`` jets at once, one per column."""
    for c in range(n):
        out[0, c] = e0
    for order in range(1, top + 1):
        _derivative_rule(w, out, out, order, n)


@jit()
def activation_rows(code, param, z, w, out, y, q, n, top):
    """:func:`fastgrad.kernels.jets.activation_jet` of one unit for ``n`` jets at once.

    ``w[1:top + 1, :n]`` holds the jets of the unit's pre-activation change
    to order ``top`` (one per column), ``out[1:top + 1, :n]`` receives those
    of its activation change; ``param`` is the activation's parameter;
    ``y``, ``q`` are scratch of the same shape. Smooth codes only (tanh,
    sigmoid, softplus, elu); the caller makes sure an elu unit stays on its
    side of 0.
    """
    if code == TANH:
        e = math.exp(-2.0 * abs(z))
        _tanh_like_rows(
            w, math.tanh(z), 4.0 * e / ((1.0 + e) * (1.0 + e)), 1.0, 0.0, out, q, n, top
        )
        return
    if code == ELU:
        if z > 0.0:
            for order in range(1, top + 1):
                for c in range(n):
                    out[order, c] = w[order, c]
            return
        _exp_rows(w, param * math.exp(z), out, n, top)
        return
    if code == SIGMOID:
        s, c_ = sigmoid_pair(z)
        _tanh_like_rows(w, s, s * c_, 1.0, 1.0, out, q, n, top)
        return
    # softplus' = sigmoid(beta z): the jets of sigmoid(beta (z + w)) in y, then integrate
    s, c_ = sigmoid_pair(param * z)
    _tanh_like_rows(w, s, param * s * c_, param, param, y, q, n, top)
    for order in range(1, top + 1):
        _derivative_rule(w, y, out, order, n)


ROWS = 64
"""Units per parallel work item of :func:`activate_jets`: the length of its vector loops."""


@jit(parallel=True)
def activate_jets(k, b0, radius, net, jets, state, moves, adjoint, cubic):
    """Replace the jets of ``Z_k`` in ``jets`` by those of ``M_k (A_k(g) - A_k)``, in place.

    Refuses (``state[s, i] = REFUSED``) a (unit, sample) for which a unit of
    layer ``k`` could reach its kink or a smooth unit could move by more than
    ``JET_REACH`` at ``|g| <= radius[s]``; the jets of refused and ready
    columns are computed all the same (they are never read, and each column
    of the next product depends on its own column only). ``moves[s, i]``
    becomes the larger of itself and the largest scaled move of a unit of
    layer ``k`` (:func:`scaled_move`).

    When gathering (:func:`gathers_cubic`, ``adjoint`` ``(batch, sizes[k])`` the adjoints
    ``dloss_b / d(M_k A_k)[b]``), the activation jets are taken one order past the jets
    carried, with that order of the input zero: what they give there is exactly the part of
    the activation's next order that the lower orders make (for order 3, ``2 t_2 w_1 w_2 +
    t_3 w_1^3``, :func:`activate_low_jets`), which the later layers carry on linearly; its
    dot product with the adjoints, times the dropout multipliers, is added to ``cubic[s,
    i]``, unit by unit in order.
    """
    sizes = net.sizes
    code = net.codes[k]
    param = net.act_params[k]
    smooth_reach = _jet_reach(code, param)
    pre = node_block(net.pre, net.node_off, sizes, k)
    mask = node_block(net.masks, net.node_off, sizes, k)
    kinked = _breaks_at_zero(code)
    n_units = state.shape[1]
    n_samples = state.shape[0]
    n_blocks = (n_units + ROWS - 1) // ROWS
    top = jets.shape[2]
    gather = gathers_cubic(adjoint)
    jet_top = top + 1 if gather else top
    for item in numba.prange(n_samples * n_blocks):
        s = item // n_blocks
        i0 = (item % n_blocks) * ROWS
        n = min(n_units, i0 + ROWS) - i0
        w = np.zeros((ORDER + 1, ROWS))
        out = np.zeros((ORDER + 1, ROWS))
        y = np.zeros((ORDER + 1, ROWS))
        q = np.zeros((ORDER + 1, ROWS))
        moved = np.zeros(ROWS)
        b = b0 + s
        r = radius[s]
        for p in range(sizes[k]):
            m = mask[b, p]
            if m == 0.0:
                for d in range(top):
                    for c in range(n):
                        jets[p, s, d, i0 + c] = 0.0
                continue
            power = 1.0
            for c in range(n):
                moved[c] = 0.0
            for d in range(1, top + 1):
                power *= r
                for c in range(n):
                    w[d, c] = jets[p, s, d - 1, i0 + c]
                    moved[c] += abs(w[d, c]) * power
            z = pre[b, p]
            limit = abs(z) * SAFETY if kinked else smooth_reach
            for c in range(n):
                fits = moved[c] < limit if kinked else moved[c] <= limit
                if not fits and state[s, i0 + c] == ACTIVE:
                    state[s, i0 + c] = REFUSED
                moves[s, i0 + c] = max(moves[s, i0 + c], scaled_move(moved[c], smooth_reach))
            activation_rows(code, param, z, w, out, y, q, n, jet_top)
            for d in range(1, top + 1):
                for c in range(n):
                    jets[p, s, d - 1, i0 + c] = m * out[d, c]
            if gather:  # w[jet_top] stays 0: the order past the jets made by the lower ones
                weight = adjoint[b, p] * m
                for c in range(n):
                    cubic[s, i0 + c] += weight * out[jet_top, c]


@jit(entry=False, refcount=False)
def _compose_to_fifth(
    first, second, third, fourth, gathered, farthest, unbounded, state, taylor, m, weight, r, limit
):
    """One unit's step of :func:`activate_low_jets` for jets of orders 1 to 4, in place.

    ``first[c]`` .. ``fourth[c]`` are orders 1 to 4 of column ``c``'s input change (each a
    contiguous row); with
    ``t_n`` the activation's Taylor coefficients, the composition's orders
    are sums over ``n`` of ``t_n`` times order ``d`` of ``w(g)^n``; the first
    four replace the rows (times ``m``), and the fifth without its ``t_1
    w_5`` part, times ``m`` and ``weight``, is added to ``gathered``. A
    ``limit`` of -1 stands for a smooth unit, else a kinked one's distance.
    """
    t1 = m * taylor[1]
    t2 = m * taylor[2]
    t3 = m * taylor[3]
    t4 = m * taylor[4]
    t5 = m * taylor[5]
    r2 = r * r
    r3 = r2 * r
    r4 = r3 * r
    for c in range(first.shape[0]):
        w1 = first[c]
        w2 = second[c]
        w3 = third[c]
        w4 = fourth[c]
        moved = abs(w1) * r + abs(w2) * r2 + abs(w3) * r3 + abs(w4) * r4
        if limit >= 0.0 and not moved < limit and state[c] == ACTIVE:
            state[c] = REFUSED
        farthest[c] = moved if moved > farthest[c] else farthest[c]
        unbounded[c] += 0.0 * moved
        w11 = w1 * w1
        first[c] = t1 * w1
        second[c] = t1 * w2 + t2 * w11
        third[c] = t1 * w3 + t2 * (2.0 * w1 * w2) + t3 * (w11 * w1)
        fourth[c] = (
            t1 * w4 + t2 * (w2 * w2 + 2.0 * w1 * w3) + t3 * (3.0 * w11 * w2) + t4 * (w11 * w11)
        )
        fifth = (
            t2 * (2.0 * (w1 * w4 + w2 * w3))
            + t3 * (3.0 * w1 * (w1 * w3 + w2 * w2))
            + t4 * (4.0 * w11 * w1 * w2)
            + t5 * (w11 * w11 * w1)
        )
        gathered[c] += weight * fifth


@jit(entry=False, refcount=False)
def _add_onward(summed, onward, jets, p, s, i0, i1):
    """``summed[o, d] += onward[o, p] * jets[p, s, d, i0:i1]``: one unit's share of the next jets.

    Rows taken one order at a time: a view along the last axis alone stays contiguous, and
    its loop vectorizes (a view of several orders at once made it four times slower).
    """
    for o in range(summed.shape[0]):
        weight = onward[o, p]
        for d in range(summed.shape[1]):
            row = jets[p, s, d, i0:i1]
            into = summed[o, d]
            for c in range(i1 - i0):
                into[c] += weight * row[c]


@jit(parallel=True)
def activate_low_jets(k, b0, radius, net, jets, state, moves, adjoint, cubic, onward, logits):
    """:func:`activate_jets` for jets of orders 1 and 2 (or 1 to 4), gathering the next order.

    ``jets`` is ``(sizes[k], S, 2, U)`` (or ``(sizes[k], S, 4, U)``, the same with the
    composition to order 5, :func:`_compose_to_fifth`). With ``t_n = phi^(n)(z) / n!`` the
    Taylor coefficients of a unit's activation at its pre-activation ``z`` and ``w_1``,
    ``w_2`` the orders of its input's change, its activation moves by ``t_1 w_1 g + (t_1 w_2
    + t_2 w_1^2) g^2 + (t_1 w_3 + 2 t_2 w_1 w_2 + t_3 w_1^3) g^3 + ...`` (Faà di Bruno): the
    first two orders replace the jets, times the dropout multiplier ``m``, and the part of
    the third not made by the input's own third order, ``m (2 t_2 w_1 w_2 + t_3 w_1^3)``, is
    what the later layers carry on linearly (:func:`fastgrad._layer_series._carry`): its dot
    product with ``adjoint[b]``, the adjoints ``dloss_b / d(M_k A_k)[b]``, is added to
    ``cubic[s, i]``, unit by unit in order. The tests and ``moves`` are those of
    :func:`activate_jets`, on the two orders carried.

    For the last hidden layer, ``onward`` is ``W_L`` and ``logits`` ``(n_out, S, carried,
    U)`` receives the logits' jets, ``W_L`` times the activated ones, summed here unit by
    unit in order while they are in cache (``jets`` is then left meaningless): the product
    of ``n_out`` rows is memory-bound, and BLAS threads it poorly on a busy machine. Else
    both are ``(0, 0)``-shaped and the caller multiplies.
    """
    sizes = net.sizes
    code = net.codes[k]
    param = net.act_params[k]
    smooth_reach = _jet_reach(code, param)
    pre = node_block(net.pre, net.node_off, sizes, k)
    mask = node_block(net.masks, net.node_off, sizes, k)
    kinked = _breaks_at_zero(code)
    n_units = state.shape[1]
    n_samples = state.shape[0]
    n_blocks = (n_units + ROWS - 1) // ROWS
    carried = jets.shape[2]
    fuse = onward.shape[0] > 0
    n_out = onward.shape[0]
    # each unit's Taylor coefficients once, not once per block of columns
    taylors = np.empty((n_samples, sizes[k], 6))
    for s in numba.prange(n_samples):
        step = np.zeros(ORDER + 1)
        taylor = np.zeros(ORDER + 1)
        y = np.zeros(ORDER + 1)
        q = np.zeros(ORDER + 1)
        step[1] = 1.0
        for p in range(sizes[k]):
            activation_jet(code, param, pre[b0 + s, p], step, taylor, y, q)
            for n in range(6):
                taylors[s, p, n] = taylor[n]
    for item in numba.prange(n_samples * n_blocks):
        s = item // n_blocks
        i0 = (item % n_blocks) * ROWS
        i1 = min(n_units, i0 + ROWS)
        summed = np.zeros((n_out, carried, ROWS))
        farthest = np.zeros(ROWS)  # the largest move of a unit of the layer, per column
        unbounded = np.zeros(ROWS)  # NaN once a move is NaN or infinite: a max would drop it
        b = b0 + s
        r = radius[s]
        r2 = r * r
        for p in range(sizes[k]):
            m = mask[b, p]
            if m == 0.0:
                for d in range(carried):
                    for i in range(i0, i1):
                        jets[p, s, d, i] = 0.0
                continue
            z = pre[b, p]
            taylor = taylors[s, p]
            t1 = m * taylor[1]
            t2 = m * taylor[2]
            t3 = m * taylor[3]
            weight = adjoint[b, p]
            first = jets[p, s, 0, i0:i1]
            second = jets[p, s, 1, i0:i1]
            gathered = cubic[s, i0:i1]
            if carried == 4:
                _compose_to_fifth(
                    first, second, jets[p, s, 2, i0:i1], jets[p, s, 3, i0:i1], gathered,
                    farthest, unbounded, state[s, i0:i1], taylor, m, weight, r,
                    abs(z) * SAFETY if kinked else -1.0,
                )  # fmt: skip
                if fuse:
                    _add_onward(summed, onward, jets, p, s, i0, i1)
                continue
            if kinked:
                limit = abs(z) * SAFETY
                for c in range(i1 - i0):
                    if not abs(first[c]) * r + abs(second[c]) * r2 < limit:
                        if state[s, i0 + c] == ACTIVE:
                            state[s, i0 + c] = REFUSED
            # one loop the compiler vectorizes: no branch, contiguous rows
            for c in range(i1 - i0):
                w1 = first[c]
                w2 = second[c]
                moved = abs(w1) * r + abs(w2) * r2
                farthest[c] = moved if moved > farthest[c] else farthest[c]
                unbounded[c] += 0.0 * moved
                first[c] = t1 * w1
                second[c] = t1 * w2 + t2 * w1 * w1
                gathered[c] += weight * (w1 * (2.0 * t2 * w2 + t3 * w1 * w1))
            if fuse:
                _add_onward(summed, onward, jets, p, s, i0, i1)
        if fuse:
            for o in range(n_out):
                for d in range(carried):
                    for c in range(i1 - i0):
                        logits[o, s, d, i0 + c] = summed[o, d, c]
        # a smooth layer's limit is one number: its units all fit when the farthest does
        for i in range(i0, i1):
            fits = unbounded[i - i0] == 0.0 and (kinked or farthest[i - i0] <= smooth_reach)
            if not fits and state[s, i] == ACTIVE:
                state[s, i] = REFUSED
            moves[s, i] = max(moves[s, i], scaled_move(farthest[i - i0], smooth_reach))


@jit(parallel=True)
def finish_jets(
    u, units, b0, radius, net, head, loss_code, jets, state, moves, cubic, gather, coef, ready
):
    """Turn the jets of the logits into each (unit, sample)'s loss series, or refuse it.

    ``jets`` holds the jets of the logits to order ``jets.shape[2]``,
    ``(n_out, S, jets.shape[2], U)``, and the series is kept to order ``top``: that order or,
    when ``gather``, one more, whose coefficient is then the loss's own part from the
    logits' lower orders plus ``cubic[s, i]``, the other parts gathered by adjoints.
    For every :data:`ACTIVE` column whose logits move by at most ``JET_REACH``
    (any distance for mse) and whose loss series passes the tail test at
    order ``top`` (at ``top = ORDER``,
    :func:`~fastgrad.kernels.unit_series.tail_fits`: the terms of orders
    ``top - 1`` and ``top`` together at most ``TAIL`` of the whole at ``|g|
    <= radius[s]``; below, :func:`odd_tail_fits` with the
    largest scaled move ``moves[s, i]``, the logits' included), the
    coefficients ``G_0 .. G_top`` (zeros above) go to ``coef[node, :]`` and
    ``ready[node]`` becomes :data:`READY`, ``node`` the buffer index of
    ``(u, b0 + s, units[i])`` in the layout of ``net.pre``. A refused one
    gets :data:`REFUSED` (and ``state`` :data:`SHORT` when only the tail
    test refused it), a unit that does not move a zero series, and
    a :data:`SKIP` column is left as it is.
    """
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    n_out = sizes[n_layers]
    n_u = sizes[u]
    logits = node_block(net.pre, net.node_off, sizes, n_layers)
    start = net.node_off[u]
    n_units = state.shape[1]
    n_samples = state.shape[0]
    carried = jets.shape[2]
    top = carried + 1 if gather else carried
    for block in numba.prange((n_units + BLOCK - 1) // BLOCK):
        w = np.zeros(ORDER + 1)
        jet = np.zeros((ORDER + 1, n_out))
        out = np.zeros(top + 1)  # the loss's jet to the series' order: no work past it
        e = np.zeros(top + 1)
        s_ = np.zeros(top + 1)
        log = np.zeros(top + 1)
        for i in range(block * BLOCK, min(n_units, (block + 1) * BLOCK)):
            for s in range(n_samples):
                b = b0 + s
                node = start + b * n_u + units[i]
                if state[s, i] == SKIP:
                    continue
                if state[s, i] == REFUSED:
                    ready[node] = REFUSED
                    continue
                if state[s, i] == READY:
                    coef[node, :] = 0.0
                    ready[node] = READY
                    continue
                r = radius[s]
                fits = True
                move = moves[s, i]
                for c in range(n_out):
                    for d in range(1, carried + 1):
                        w[d] = jets[c, s, d - 1, i]
                        jet[d, c] = w[d]
                    if loss_code != MSE:
                        moved = reach(w, r)
                        if moved > JET_REACH:
                            fits = False
                            break
                        move = max(move, moved)
                if not fits:
                    ready[node] = REFUSED
                    state[s, i] = REFUSED
                    continue
                loss_jet(loss_code, logits[b], head.prob[b], head.targets[b], jet, out, e, s_, log)
                if gather:
                    out[top] += cubic[s, i]
                if odd_tail_fits(out, r, move, top) if top < ORDER else tail_fits(out, r, top):
                    coef[node, : top + 1] = out
                    coef[node, top + 1 :] = 0.0  # the series stops at order top
                    ready[node] = READY
                    state[s, i] = READY
                else:
                    ready[node] = REFUSED
                    state[s, i] = SHORT
