"""Truncated power series ("jets") carried through activations and losses.

A jet ``w[0:ORDER + 1]`` stands for the series ``w(g) = sum_n w[n] g^n`` of a
small change with no constant term (``w[0] == 0``). The functions here map
the jet of a change of a pre-activation ``z`` to the jet of the change of
``phi(z + w(g)) - phi(z)``, and the jets of the changes of the logits to the
jet of the change of the loss, with the classic recurrences of Taylor-mode
differentiation (``y' = (1 - y^2) w'`` for tanh, ``y' = y (1 - y) w'`` for
the sigmoid, ``E' = E w'`` for the exponential, ``(log S)' = S' / S``), each
``O(ORDER^2)``.

The finite-difference kernel uses them when a perturbation is so small that
the series converge fast: it checks how far each layer's jet can move its
units (``sum_n |w_n| r^n`` for the largest step ``r``) against the distance
to the nearest kink or singularity, and checks afterwards that the last
terms of the loss's series are negligible. Within those checks the series
evaluates ``loss(theta + g e_i) - loss(theta)`` as exactly as ``exp`` and
``tanh`` would.
"""

import math

from ._jit import jit
from .activations import (
    ELU,
    IDENTITY,
    LEAKY_RELU,
    RELU,
    SIGMOID,
    SOFTPLUS,
    TANH,
    sigmoid_pair,
)
from .losses import BINARY_CROSS_ENTROPY, MSE

ORDER = 7
"""Highest power kept.

The series path uses a jet only where every smooth unit and logit moves by at
most ``JET_REACH = 1e-4`` (:mod:`fastgrad.kernels.unit_series`), so each term
is at most ``6.4e-5`` of the one before and the 6th and 7th terms at most
``1e-21`` of the first, far below the ``TAIL = 1e-17`` test. With 5 terms the
last two could be ``2.6e-13`` of the first, and the test would turn most units
away from the series path."""


@jit(entry=False, refcount=False)
def reach(w, r):
    """Return ``sum_n |w[n]| r^n``: how far the jet can move at ``|g| <= r``."""
    total = 0.0
    power = 1.0
    for n in range(1, ORDER + 1):
        power *= r
        total += abs(w[n]) * power
    return total


@jit(entry=False, refcount=False, inline=True)
def derivative_rule(w, factor, n):
    """Return order ``n`` of the jet of ``y`` with ``y' = factor w'``.

    ``(1/n) sum_{k=1}^{n} k w[k] factor[n - k]``, the coefficient recurrence
    of Taylor-mode differentiation (Griewank & Walther, *Evaluating
    Derivatives*). Only orders below ``n`` of ``factor`` are read, so it may
    be the jet being filled (the exponential's ``E' = E w'``). Inlined: as
    a call per order it made the series path 1.2-1.5 times slower; inlined,
    the jets compile to the instructions of the loop written out in each.
    """
    total = 0.0
    for k in range(1, n + 1):
        total += k * w[k] * factor[n - k]
    return total / n


@jit(entry=False, refcount=False)
def _tanh_like(w, y0, q0, quadratic, linear, y, q):
    """Jet of ``y`` with ``y' = q w'``, ``q = linear * y - quadratic * y^2`` (up to a constant).

    ``q0`` is ``q`` at ``g = 0``, passed accurately; ``y[0] = y0``.
    """
    y[0] = y0
    q[0] = q0
    for n in range(1, ORDER + 1):
        y[n] = derivative_rule(w, q, n)
        square = 0.0
        for a in range(0, n + 1):
            square += y[a] * y[n - a]
        q[n] = linear * y[n] - quadratic * square


@jit(entry=False, refcount=False)
def exp_jet(w, e0, out):
    """Fill ``out`` with the jet of ``e0 exp(w(g))`` to order ``len(out) - 1`` (``out[0] = e0``)."""
    out[0] = e0
    for n in range(1, out.shape[0]):
        out[n] = derivative_rule(w, out, n)


@jit(entry=False, refcount=False)
def log_jet(s, out):
    """Fill ``out[1:]`` with the jet of ``log(s(g) / s[0])``, to order ``len(out) - 1``."""
    out[0] = 0.0
    for n in range(1, out.shape[0]):
        total = n * s[n]
        for k in range(1, n):
            total -= k * out[k] * s[n - k]
        out[n] = total / (n * s[0])


@jit(entry=False, refcount=False)
def activation_jet(code, param, z, w, out, y, q):
    """Fill ``out[1:]`` with the jet of ``phi(z + w(g)) - phi(z)``.

    ``param`` is the activation's parameter
    (:mod:`fastgrad.kernels.activations`); ``y`` and ``q`` are scratch of
    length ``ORDER + 1``. The caller makes sure that ``z + w(g)`` stays on
    one side of any kink.

    Raises
    ------
    ValueError
        For a code that is not one of :mod:`fastgrad.kernels.activations`.
    """
    out[0] = 0.0
    if code == IDENTITY or ((code == RELU or code == LEAKY_RELU or code == ELU) and z > 0.0):
        for n in range(1, ORDER + 1):
            out[n] = w[n]
        return
    if code == RELU:
        for n in range(1, ORDER + 1):
            out[n] = 0.0
        return
    if code == LEAKY_RELU:
        for n in range(1, ORDER + 1):
            out[n] = param * w[n]
        return
    if code == ELU:
        exp_jet(w, param * math.exp(z), out)
        out[0] = 0.0
        return
    if code == TANH:
        e = math.exp(-2.0 * abs(z))
        # y = tanh: y' = (1 - y^2) w', q = 1 - y^2 with q[0] = sech^2(z)
        _tanh_like(w, math.tanh(z), 4.0 * e / ((1.0 + e) * (1.0 + e)), 1.0, 0.0, y, q)
        # q[n >= 1] = -sum y_a y_{n-a}, the constant 1 drops out
        for n in range(1, ORDER + 1):
            out[n] = y[n]
        return
    if code == SIGMOID:
        s, c = sigmoid_pair(z)
        _tanh_like(w, s, s * c, 1.0, 1.0, y, q)
        for n in range(1, ORDER + 1):
            out[n] = y[n]
        return
    if code == SOFTPLUS:
        # phi' = sigmoid(beta z): the jet of sigmoid(beta (z + w)) in q, whose
        # y' = beta y (1 - y) w', then integrate
        s, c = sigmoid_pair(param * z)
        _tanh_like(w, s, param * s * c, param, param, q, y)
        for n in range(1, ORDER + 1):
            out[n] = derivative_rule(w, q, n)
        return
    raise ValueError("activation_jet: unknown activation code")


@jit(entry=False, refcount=False)
def loss_jet(loss_code, z, prob, y, w, out, e, s, log):
    """Fill ``out[1:]`` with the jet of ``loss(z + w(g)) - loss(z)`` for one sample.

    ``w`` is ``(ORDER + 1, n_out)``: the jet of each logit's change. The
    jet is taken to order ``top = len(out) - 1 <= ORDER`` (the rows of ``w``
    past it are not read); ``e``, ``s`` and ``log`` are scratch of length
    ``len(out)``.

    A confident prediction's loss moves by a small difference of large terms (``p - y``
    with ``p`` close to ``y``); the jets are written so that those terms are not formed:
    softmax cross-entropy's logits are moved by the targets' mean of their jets first
    (``loss = W log sum_c p_c exp(w_c - m)`` with ``m = sum_c y_c w_c / W``, so the
    target's own term of a one-hot row is constant), and binary cross-entropy with ``p >
    1/2`` is ``(1 - y) w + log(1 + (1 - p) (exp(-w) - 1))``, ``1 - p`` from the logit.
    """
    n_out = z.shape[0]
    top = out.shape[0] - 1
    for n in range(top + 1):
        out[n] = 0.0
    if loss_code == MSE:
        for c in range(n_out):
            gap = z[c] - y[c]
            for n in range(1, top + 1):
                square = 0.0
                for a in range(1, n):
                    square += w[a, c] * w[n - a, c]
                out[n] += w[n, c] * gap + 0.5 * square
        return
    if loss_code == BINARY_CROSS_ENTROPY:
        for c in range(n_out):
            # log(1 + q (exp(w) - 1)) - y w: the series of 1 + q (E - 1); for q > 1/2 the
            # same of -w and 1 - q, plus (1 - y) w
            q, sign = prob[c], 1.0
            if q > 0.5:
                q, sign = sigmoid_pair(z[c])[1], -1.0
            for n in range(top + 1):
                e[n] = sign * w[n, c]
            exp_jet(e, 1.0, s)
            s[0] = 1.0
            for n in range(1, top + 1):
                s[n] *= q
            log_jet(s, log)
            linear = 1.0 - y[c] if sign < 0.0 else -y[c]
            for n in range(1, top + 1):
                out[n] += log[n] + linear * w[n, c]
        return
    weight = 0.0
    for c in range(n_out):
        weight += y[c]
    if weight == 0.0:  # no target: the loss is 0 whatever the logits
        return
    # the targets' mean of the logits' jets, held in out until the end
    for c in range(n_out):
        for n in range(1, top + 1):
            out[n] += y[c] * w[n, c]
    for n in range(1, top + 1):
        out[n] /= weight
    for n in range(top + 1):
        s[n] = 0.0
    for c in range(n_out):
        e[0] = 0.0
        for n in range(1, top + 1):
            e[n] = w[n, c] - out[n]
        exp_jet(e, prob[c], log)
        for n in range(top + 1):
            s[n] += log[n]
    s[0] = 1.0
    log_jet(s, log)
    for n in range(1, top + 1):
        out[n] = weight * log[n]
