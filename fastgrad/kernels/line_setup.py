"""The series of every unit of a layer followed by piecewise-linear layers: the elementwise steps.

When every hidden layer after node layer ``u`` is identity, relu or leaky
relu, moving ``A_u[b, i]`` by ``s`` moves the logits of sample ``b`` along a
line, ``z + s v``, for as long as no later kinked unit changes side; ``v``
is column ``i`` of the Jacobian ``G_u[b]`` of the logits with respect to
``A_u[b]``, which reverse accumulation gives for every unit of the layer at
once (:mod:`fastgrad._line_setup`, one matrix product per layer for all
samples). What the one-unit path
(:func:`~fastgrad.kernels.unit_series.unit_series`) carries through every
later layer per (unit, sample) reduces to ``v`` and a certificate that no
later unit changes side, made here from bounds instead of the carried
changes:

- the next layer exactly: ``Z_{u+1}[b, q]`` moves by ``s W_{u+1}[q, i]``,
  so ``|s| t[b, i] < 1`` with ``t[b, i] = max_q |W_{u+1}[q, i]| / |Z_{u+1}[b, q]|``
  (:func:`next_reach`) is the condition itself; it is tried first in the
  form ``t[b, i] <= max_q |W_{u+1}[q, i]| max_q 1 / |Z_{u+1}[b, q]|``
  (:func:`nearest_kinks`), which costs ``O(batch + n)`` for the layer, and
  computed for the pairs that form does not decide;
- later layers ``k >= u + 2`` by Cauchy-Schwarz: with ``D_k`` the slopes
  times the dropout multipliers and ``d_k`` the change of ``Z_k`` per unit of
  ``s``, ``|d_k[q]| <= R_k[b, q] y_{k-1}``, ``R_k[b, q]^2 = sum_p W_k[q, p]^2
  |D_{k-1}[b, p]|`` and ``y_k^2 = sum_p |D_k[b, p]| d_k[p]^2``; ``y_{u+1} =
  c[b, i]`` exactly and ``y_k <= F_k[b] y_{k-1}`` with ``F_k[b]^2 = sum_q
  |D_k[b, q]| R_k[b, q]^2``. So ``|s| c[b, i] < H[b]``, ``H[b] = min_k
  h_k[b] / prod_{l=u+2}^{k-1} F_l[b]`` and ``h_k[b] = min_q |Z_k[b, q]| /
  R_k[b, q]`` (:func:`later_layer_reach`), certifies them all.

Every quantity of the bounds is a sum of non-negative terms or a product,
quotient or square root of such sums: in floating point each is within a
relative ``(n + 2) u`` of its exact value (``n`` terms, any order of
summation, with or without fused multiply-adds; Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., §3.1), so the whole bound is
within ``(L + 2)(n_max + 4) u``; :func:`finish_line_series` compares
against ``SAFETY`` shrunk by twice that (:func:`bound_safety`). A pair the certificate does not
decide is left to the one-unit path, which carries the change exactly.

:func:`finish_line_series` makes, per (unit, sample), the other tests of the
one-unit path with the same constants (the unit's own kink or reach, the
logits' reach, the tail) and writes the loss series. These kernels are
serial: their work is ``O(batch x n)`` per layer (about 50 ns per (unit,
sample) for the series), far below the matrix products around them, and a
parallel kernel would cost seconds more to compile for the first check.
"""

import math

import numpy as np

from ._jit import jit
from .activations import derivative, is_kinked, is_piecewise_linear
from .dense import node_block
from .jets import ORDER, activation_jet, loss_jet, reach
from .layer_series import READY, REFUSED
from .losses import BINARY_CROSS_ENTROPY, MSE, bernoulli_gradient
from .unit_series import JET_REACH, SAFETY, _breaks_at_zero, _jet_reach, tail_fits

UNIT_ROUNDING = 2.0**-53
"""Unit roundoff of float64."""


@jit()
def bound_safety(n_layers, width):
    """Return the share of a distance to a kink that a bounded move may take.

    :data:`~fastgrad.kernels.unit_series.SAFETY` shrunk by twice the
    relative rounding that the bounds of a network of ``n_layers`` layers
    at most ``width`` wide can carry, ``(n_layers + 2)(width + 4) u``.
    """
    return SAFETY * (1.0 - 2.0 * (n_layers + 2) * (width + 4) * UNIT_ROUNDING)


@jit()
def is_line_layer(u, codes):
    """Whether every hidden layer after node layer ``u`` (hidden) is piecewise linear."""
    n_layers = codes.shape[0] - 1
    if u < 1 or u >= n_layers:
        return False
    for k in range(u + 1, n_layers):
        if not is_piecewise_linear(codes[k]):
            return False
    return True


@jit()
def slopes(k, net, out):
    """Fill ``out[b, q]`` with ``D_k[b, q] = phi'(Z_k[b, q]) M_k[b, q]`` of hidden layer ``k``.

    At a kink the left slope (:func:`~fastgrad.kernels.activations.derivative`).
    """
    z_k = node_block(net.pre, net.node_off, net.sizes, k)
    m_k = node_block(net.masks, net.node_off, net.sizes, k)
    code = net.codes[k]
    param = net.act_params[k]
    for b in range(z_k.shape[0]):
        for q in range(z_k.shape[1]):
            m = m_k[b, q]
            out[b, q] = 0.0 if m == 0.0 else m * derivative(code, param, z_k[b, q])


@jit()
def nearest_kinks(k, net, out):
    """Fill ``out[b] = max_q 1 / |Z_k[b, q]|`` over the kinked units of layer ``k`` in sample ``b``.

    Units dropped in the sample do not count, and neither does any unit
    when the layer is not kinked (0); a unit sitting on its kink gives
    ``inf``. With the largest ``|W_k[q, i]|`` of each column it bounds the
    next layer's reach ``t[b, i]`` (:func:`next_reach`) from above in
    ``O(batch + n)``.
    """
    z_k = node_block(net.pre, net.node_off, net.sizes, k)
    m_k = node_block(net.masks, net.node_off, net.sizes, k)
    kinked = is_kinked(net.codes[k], net.act_params[k])
    for b in range(z_k.shape[0]):
        least = math.inf
        if kinked:
            for q in range(z_k.shape[1]):
                if m_k[b, q] != 0.0:
                    least = min(least, abs(z_k[b, q]))
        out[b] = 0.0 if least == math.inf else 1.0 / least


@jit(entry=False, refcount=False)
def next_reach(u, i, b, net, wt):
    """Return ``t = max_q |W_{u+1}[q, i]| / |Z_{u+1}[b, q]|`` over the kinked units of ``u + 1``.

    ``|s| t < 1`` is exactly the condition that no unit of the next layer
    changes side when ``A_u[b, i]`` moves by ``s``. Units dropped in sample
    ``b`` do not count, and neither does any unit when the layer is not
    kinked (0); a unit on its kink gives ``inf`` where ``W_{u+1}[q, i] !=
    0``. ``wt`` holds the transposed weights: the column is contiguous.
    """
    sizes = net.sizes
    k = u + 1
    if not is_kinked(net.codes[k], net.act_params[k]):
        return 0.0
    n = sizes[k]
    row = net.node_off[k] + b * n
    start = net.w_off[k] + i * n
    reach_of = 0.0
    for q in range(n):
        w = abs(wt[start + q])
        if net.masks[row + q] == 0.0 or w == 0.0:
            continue
        z = abs(net.pre[row + q])
        if z == 0.0:
            return math.inf
        reach_of = max(reach_of, w / z)
    return reach_of


@jit()
def later_layer_reach(k, net, rows, out):
    """Fill ``out[b] = min_q |Z_k[b, q]| / rows[b, q]`` over the kinked units of layer ``k``.

    ``rows`` ``(batch, sizes[k])`` are the bounds ``R_k`` of how far each
    unit moves per unit of the norm of the change below it; units dropped
    in the sample, units that cannot move (``rows = 0``) and every unit of
    a layer that is not kinked do not count (``inf``).
    """
    z_k = node_block(net.pre, net.node_off, net.sizes, k)
    m_k = node_block(net.masks, net.node_off, net.sizes, k)
    kinked = is_kinked(net.codes[k], net.act_params[k])
    for b in range(z_k.shape[0]):
        least = math.inf
        if kinked:
            for q in range(z_k.shape[1]):
                if m_k[b, q] != 0.0 and rows[b, q] > 0.0:
                    least = min(least, abs(z_k[b, q]) / rows[b, q])
        out[b] = least


@jit(entry=False, refcount=False)
def linear_loss_series(loss_code, z, prob, y, w, bernoulli, out):
    """Fill ``out[1:]`` with the series in ``g`` of ``loss(z + g w) - loss(z)``: logits on a line.

    The special case of :func:`~fastgrad.kernels.jets.loss_jet` where every
    logit's jet is linear, without its exponential and logarithm jets:

    - mse: ``w.(z - y) g + |w|^2 g^2 / 2``;
    - cross-entropy: ``(W p.w - y.w) g + W sum_{n >= 2} kappa_n g^n / n!``,
      ``W = sum y`` and ``kappa_n`` the cumulants of ``w`` under ``p =
      softmax(z)``, from its moments about the likeliest output's ``w``
      (then ``p.w`` and ``y.w`` are taken about it too) by the moment-cumulant
      relations (Kendall & Stuart, *The Advanced Theory of Statistics*,
      vol. 1, §3.14);
    - binary cross-entropy: ``sum_k K_k(g w_k) - g y.w``, ``K_k`` the
      cumulant generating function of output ``k``'s Bernoulli variable
      (``bernoulli[k, n]``, :func:`~fastgrad.kernels.line_series.bernoulli_cumulants`).
    """
    n_out = z.shape[0]
    for n in range(ORDER + 1):
        out[n] = 0.0
    if loss_code == MSE:
        square = 0.0
        for c in range(n_out):
            out[1] += w[c] * (z[c] - y[c])
            square += w[c] * w[c]
        out[2] = 0.5 * square
        return
    if loss_code == BINARY_CROSS_ENTROPY:
        for c in range(n_out):
            # the first order is (q - y) w, formed without 1 - tiny (bernoulli_gradient)
            out[1] += bernoulli_gradient(z[c], y[c]) * w[c]
            power = w[c]
            for n in range(2, ORDER + 1):
                power *= w[c]
                out[n] += bernoulli[c, n] * power
        factorial = 1.0
        for n in range(2, ORDER + 1):
            factorial *= n
            out[n] /= factorial
        return
    # the moments about the likeliest output's w: its term is exactly zero, so that a
    # confident output (p = 1 - tiny) leaves the others' tiny p, not 1 - p, in the mean;
    # cumulants past the first do not move with the origin, and sum(W p - y) = 0
    likeliest = 0
    for c in range(1, n_out):
        if prob[c] > prob[likeliest]:
            likeliest = c
    origin = w[likeliest]
    weight = 0.0
    mean = 0.0
    y_dot_w = 0.0
    for c in range(n_out):
        weight += y[c]
        mean += prob[c] * (w[c] - origin)
        y_dot_w += y[c] * (w[c] - origin)
    m2 = m3 = m4 = m5 = m6 = m7 = 0.0
    for c in range(n_out):
        d = (w[c] - origin) - mean
        d2 = d * d
        d3 = d2 * d
        d4 = d2 * d2
        p = prob[c]
        m2 += p * d2
        m3 += p * d3
        m4 += p * d4
        m5 += p * d4 * d
        m6 += p * d3 * d3
        m7 += p * d4 * d3
    out[1] = weight * mean - y_dot_w
    out[2] = weight * m2 / 2.0
    out[3] = weight * m3 / 6.0
    out[4] = weight * (m4 - 3.0 * m2 * m2) / 24.0
    out[5] = weight * (m5 - 10.0 * m3 * m2) / 120.0
    out[6] = weight * (m6 - 15.0 * m4 * m2 - 10.0 * m3 * m3 + 30.0 * m2 * m2 * m2) / 720.0
    out[7] = weight * (m7 - 21.0 * m5 * m2 - 35.0 * m4 * m3 + 210.0 * m3 * m2 * m2) / 5040.0


@jit(entry=False, refcount=False)
def _later_units_stay(u, i, b, step, net, wt, column_top, nearest, column_norm, later, safety):
    """Whether the bounds certify that no unit after layer ``u`` changes side (see module)."""
    if not step * column_norm[b, i] < safety * later[b]:
        return False  # the bound does not decide: the one-unit path will, exactly
    if not step * (column_top[i] * nearest[b]) < safety:
        # the next layer's bound in one product does not decide: its exact form
        if not step * next_reach(u, i, b, net, wt) < safety:
            return False
    return True


@jit(entry=False, refcount=False)
def _logits_stay(loss_code, direction, step):
    """Whether the logits move at most ``JET_REACH`` along ``direction`` (always, for mse)."""
    spread = 0.0
    for c in range(direction.shape[0]):
        spread = max(spread, abs(direction[c]))
    return loss_code == MSE or not spread * step > JET_REACH


@jit(entry=False, refcount=False)
def _keep(out, r, node, coef, ready):
    """Write the series ``out`` of ``node`` if its tail fits, else refuse it."""
    if tail_fits(out, r, ORDER):
        for d in range(ORDER + 1):
            coef[node, d] = out[d]
        ready[node] = READY
    else:
        ready[node] = REFUSED


@jit()
def finish_line_series(
    u,
    units,
    radius,
    net,
    head,
    loss_code,
    jacobian,
    wt,
    column_top,
    nearest,
    column_norm,
    later,
    safety,
    coef,
    ready,
):
    """Write the loss series of ``units`` of layer ``u`` in every sample, or decide against it.

    For a piecewise-linear layer ``u`` (identity, relu, leaky relu); a smooth
    one takes :func:`finish_smooth_line_series`, with the same arguments.
    Apart, a network of piecewise-linear layers compiles neither the jets of
    a smooth unit nor the loss's.

    Parameters
    ----------
    u : int
        Node layer (hidden); :func:`is_line_layer` holds.
    units : ndarray of int64
        Units of layer ``u``.
    radius : ndarray
        ``(batch,)`` the largest step ``r = eps max(1, max_j |A_{u-1}[b, j]|)``.
    net, head, loss_code
        The network after its forward pass, its loss side and loss code.
    jacobian : ndarray
        ``(batch, sizes[u], n_out)``, ``G_u`` transposed: the logits' change
        per unit change of each activation of layer ``u``, a row per unit.
    wt : ndarray
        The transposed weights (:class:`~fastgrad.kernels.structures.Tables`).
    column_top, nearest : ndarray
        ``(sizes[u],)`` the largest ``|W_{u+1}[q, i]|`` of each column and
        ``(batch,)`` :func:`nearest_kinks` of layer ``u + 1`` (zeros when
        ``u + 1`` is the output layer): ``t[b, i] <= column_top[i]
        nearest[b]``, and where that does not certify, :func:`next_reach`
        decides exactly.
    column_norm : ndarray
        ``(batch, sizes[u])`` ``c``: the norm of the change of layer ``u +
        2``'s input per unit of ``s`` (unused when ``later`` is ``inf``).
    later : ndarray
        ``(batch,)`` ``H``: the largest ``|s| c`` that no unit of layers
        ``u + 2 ..`` crosses at (``inf`` without such layers).
    safety : float
        :func:`bound_safety` of the network.
    coef, ready : ndarray
        Outputs, indexed like ``net.pre``: ``(len, ORDER + 1)`` loss series
        and int8 states. ``READY`` where the series is certified;
        ``REFUSED`` where the one-unit path would refuse it too (the unit's
        own kink or reach, the logits' reach, the tail test); left as it
        was where only the bound on later units does not decide, so that
        the one-unit path decides exactly.
    """
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    n_out = sizes[n_layers]
    code = net.codes[u]
    param = net.act_params[u]
    breaks = _breaks_at_zero(code)
    z_u = node_block(net.pre, net.node_off, sizes, u)
    m_u = node_block(net.masks, net.node_off, sizes, u)
    logits = node_block(net.pre, net.node_off, sizes, n_layers)
    out = np.zeros(ORDER + 1)
    line = np.zeros(n_out)
    for b in range(radius.shape[0]):
        bernoulli = head.bernoulli[b % head.bernoulli.shape[0]]
        r = radius[b]
        for index in range(units.shape[0]):
            i = units[index]
            node = net.node_off[u] + b * sizes[u] + i
            m = m_u[b, i]
            if m == 0.0:
                continue  # dropped: the kernel skips it before any path
            z = z_u[b, i]
            if breaks and not r < abs(z) * SAFETY:
                ready[node] = REFUSED
                continue
            # linear on the unit's side of its kink: the jet is the slope alone
            move = m * derivative(code, param, z)
            if move == 0.0:
                for d in range(ORDER + 1):
                    coef[node, d] = 0.0
                ready[node] = READY
                continue
            step = abs(move) * r
            if not _later_units_stay(
                u, i, b, step, net, wt, column_top, nearest, column_norm, later, safety
            ):
                continue
            direction = jacobian[b, i]
            if not _logits_stay(loss_code, direction, step):
                ready[node] = REFUSED
                continue
            for c in range(n_out):
                line[c] = move * direction[c]
            linear_loss_series(
                loss_code, logits[b], head.prob[b], head.targets[b], line, bernoulli, out
            )
            _keep(out, r, node, coef, ready)


@jit()
def finish_smooth_line_series(
    u,
    units,
    radius,
    net,
    head,
    loss_code,
    jacobian,
    wt,
    column_top,
    nearest,
    column_norm,
    later,
    safety,
    coef,
    ready,
):
    """:func:`finish_line_series` of a smooth layer ``u``: the unit's jet, the loss's jets.

    Arguments and outputs as :func:`finish_line_series`.
    """
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    n_out = sizes[n_layers]
    code = net.codes[u]
    param = net.act_params[u]
    breaks = _breaks_at_zero(code)
    limit = _jet_reach(code, param)
    z_u = node_block(net.pre, net.node_off, sizes, u)
    m_u = node_block(net.masks, net.node_off, sizes, u)
    logits = node_block(net.pre, net.node_off, sizes, n_layers)
    # scratch once, shared by every unit and sample (each use writes what it reads)
    w = np.zeros(ORDER + 1)
    w[1] = 1.0
    act = np.zeros(ORDER + 1)
    y = np.zeros(ORDER + 1)
    q = np.zeros(ORDER + 1)
    moves = np.zeros(ORDER + 1)
    jets = np.zeros((ORDER + 1, n_out))
    e = np.zeros(ORDER + 1)
    s = np.zeros(ORDER + 1)
    log = np.zeros(ORDER + 1)
    out = np.zeros(ORDER + 1)
    for b in range(radius.shape[0]):
        r = radius[b]
        for index in range(units.shape[0]):
            i = units[index]
            node = net.node_off[u] + b * sizes[u] + i
            m = m_u[b, i]
            if m == 0.0:
                continue  # dropped: the kernel skips it before any path
            z = z_u[b, i]
            if (breaks and not r < abs(z) * SAFETY) or r > limit:
                ready[node] = REFUSED
                continue
            activation_jet(code, param, z, w, act, y, q)
            still = True
            for d in range(1, ORDER + 1):
                moves[d] = m * act[d]
                still = still and act[d] == 0.0
            if still:
                for d in range(ORDER + 1):
                    coef[node, d] = 0.0
                ready[node] = READY
                continue
            step = reach(moves, r)
            if not _later_units_stay(
                u, i, b, step, net, wt, column_top, nearest, column_norm, later, safety
            ):
                continue
            direction = jacobian[b, i]
            if not _logits_stay(loss_code, direction, step):
                ready[node] = REFUSED
                continue
            for c in range(n_out):
                jets[0, c] = 0.0
                for d in range(1, ORDER + 1):
                    jets[d, c] = moves[d] * direction[c]
            # sliced as the one-unit path passes its jets: one compiled loss_jet for both
            loss_jet(
                loss_code,
                logits[b],
                head.prob[b],
                head.targets[b],
                jets[:, :n_out],
                out,
                e,
                s,
                log,
            )
            _keep(out, r, node, coef, ready)


@jit()
def finish_logit_series(units, radius, net, head, loss_code, coef, ready):
    """Write the loss series of the logits ``units`` in every sample, or refuse it.

    A logit moves the loss along its own axis: the series of
    :func:`linear_loss_series` with ``w = e_i``, under the tests of the
    one-unit path (the logit may move at most ``JET_REACH`` unless the loss
    is mse; the tail). Outputs as :func:`finish_line_series`.
    """
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    n_out = sizes[n_layers]
    logits = node_block(net.pre, net.node_off, sizes, n_layers)
    for b in range(radius.shape[0]):
        out = np.zeros(ORDER + 1)
        axis = np.zeros(n_out)
        bernoulli = head.bernoulli[b % head.bernoulli.shape[0]]
        r = radius[b]
        for index in range(units.shape[0]):
            i = units[index]
            node = net.node_off[n_layers] + b * n_out + i
            if loss_code != MSE and r > JET_REACH:
                ready[node] = REFUSED
                continue
            axis[i] = 1.0
            linear_loss_series(
                loss_code, logits[b], head.prob[b], head.targets[b], axis, bernoulli, out
            )
            axis[i] = 0.0
            if tail_fits(out, r, ORDER):
                for d in range(ORDER + 1):
                    coef[node, d] = out[d]
                ready[node] = READY
            else:
                ready[node] = REFUSED
