"""The loss along a straight line in logit space, as a power series (the line path's series).

When every layer after a perturbed unit is piecewise linear (identity, relu,
leaky_relu) and no unit of theirs changes side, the logits move along a
straight line: ``z(s) = z + s * u``, where ``s`` is the change of the
perturbed unit's activation and ``u`` is fixed for a given unit and sample.
The per-sample loss along that line is

- mse: ``F(s) = s u.(z - y) + s^2 |u|^2 / 2``, exactly;
- cross-entropy: ``F(s) = W K(s) - s y.u`` with ``W = sum_k y_k`` and
  ``K(s) = log sum_k p_k exp(s u_k)`` the cumulant generating function of
  ``u`` under ``p = softmax(z)``, so ``K(s) = sum_n kappa_n s^n / n!``;
- binary cross-entropy: ``F(s) = sum_k K_k(s u_k) - s y.u`` with ``K_k`` the
  cumulant generating function of a Bernoulli variable of mean
  ``sigmoid(z_k)``.

The series converge for ``|s| max_k |u_k - c| < pi / 2`` (``c`` the mean of
``u`` for cross-entropy, 0 otherwise). Truncated after :data:`DEGREE` terms
and used only where ``|s| max_k |u_k - c| <= RADIUS``, the neglected tail is
below ``(2 RADIUS / pi) ** DEGREE ~ 1.7e-20`` of the leading term: the series
evaluates ``F`` as exactly as ``exp`` and ``log`` would, with a handful of
multiply-adds instead of one ``exp`` per class.
"""

import math

from ._jit import jit
from .losses import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, MSE, bernoulli_gradient

DEGREE = 9
"""Highest power kept. The tail bound ``(2 RADIUS / pi) ** DEGREE`` is 1.7e-20 of the leading
term, far below rounding (``u = 1.1e-16``); 7 terms would leave 4.2e-16, above it."""

RADIUS = 0.01
"""Largest ``|s| spread(u)`` at which the series is used. Larger would send more entries down
the series and fewer to the direct path, but needs more terms for the same tail."""


@jit(entry=False, refcount=False)
def binomial(n, k):
    """Return ``C(n, k)`` as a float.

    Formed in integers, so that it is exact: in floats the fast-math
    reassociation of the products and quotients rounds it.
    """
    total = 1
    for t in range(1, k + 1):
        total = total * (n - k + t) // t
    return float(total)


@jit(entry=False, refcount=False)
def cumulants_from_central_moments(mu, kappa):
    """Fill ``kappa[2:]`` from central moments ``mu[2:]`` (``mu[1] = 0``).

    ``kappa_n = mu_n - sum_{k=2}^{n-2} C(n-1, k-1) kappa_k mu_{n-k}``.
    """
    for n in range(2, kappa.shape[0]):
        total = mu[n]
        for k in range(2, n - 1):
            total -= binomial(n - 1, k - 1) * kappa[k] * mu[n - k]
        kappa[n] = total


@jit(entry=False, refcount=False)
def bernoulli_cumulants(q, q_bar, mu, kappa):
    """Fill ``kappa[1:]`` with the cumulants of a Bernoulli(``q``) variable.

    ``q_bar = 1 - q`` is passed separately so that it keeps its precision.
    """
    kappa[1] = q
    mu[1] = 0.0
    up = q_bar
    down = -q
    for n in range(2, kappa.shape[0]):
        up *= q_bar
        down *= -q
        mu[n] = q * up + q_bar * down
    cumulants_from_central_moments(mu, kappa)


@jit(entry=False, refcount=False)
def line_coefficients(loss_code, z, prob, y, direction, bernoulli, mu, kappa, coef):
    """Fill ``coef[1:]`` with the series of ``F(s) = loss(z + s u) - loss(z)``.

    Parameters
    ----------
    loss_code : int
        Loss code.
    z, prob, y : ndarray
        The sample's logits, output probabilities and targets.
    direction : ndarray
        ``u``.
    bernoulli : ndarray
        For binary cross-entropy, ``(n_out, DEGREE + 1)`` cumulants of each
        output's Bernoulli variable (:func:`bernoulli_cumulants`).
    mu, kappa : ndarray
        Scratch of length ``DEGREE + 1``.
    coef : ndarray
        Output, length ``DEGREE + 1``; ``coef[0]`` is left at 0.

    Returns
    -------
    float
        The largest ``|s|`` for which the truncated series may be used
        (``inf`` when it is exact).
    """
    n_out = z.shape[0]
    coef[:] = 0.0
    if loss_code == MSE:
        square = 0.0
        for k in range(n_out):
            coef[1] += direction[k] * (z[k] - y[k])
            square += direction[k] * direction[k]
        coef[2] = 0.5 * square
        return math.inf
    spread = 0.0
    if loss_code == BINARY_CROSS_ENTROPY:
        for k in range(n_out):
            # the first order is (q - y) u, formed without 1 - tiny (bernoulli_gradient)
            coef[1] += bernoulli_gradient(z[k], y[k]) * direction[k]
            power = direction[k]
            for n in range(2, DEGREE + 1):
                power *= direction[k]
                coef[n] += bernoulli[k, n] * power
            spread = max(spread, abs(direction[k]))
        factorial = 1.0
        for n in range(2, DEGREE + 1):
            factorial *= n
            coef[n] /= factorial
    elif loss_code == CROSS_ENTROPY:
        # about the likeliest output's u, whose term is then exactly zero: a confident
        # output (p = 1 - tiny) leaves the others' tiny p in the mean, not 1 - p
        likeliest = 0
        for k in range(1, n_out):
            if prob[k] > prob[likeliest]:
                likeliest = k
        origin = direction[likeliest]
        weight = 0.0
        mean = 0.0
        y_dot_u = 0.0
        for k in range(n_out):
            weight += y[k]
            mean += prob[k] * (direction[k] - origin)
            y_dot_u += y[k] * (direction[k] - origin)
        mu[:] = 0.0
        for k in range(n_out):
            centred = (direction[k] - origin) - mean
            spread = max(spread, abs(centred))
            power = centred
            for n in range(2, DEGREE + 1):
                power *= centred
                mu[n] += prob[k] * power
        cumulants_from_central_moments(mu, kappa)
        coef[1] = weight * mean - y_dot_u
        factorial = 1.0
        for n in range(2, DEGREE + 1):
            factorial *= n
            coef[n] = weight * kappa[n] / factorial
    if spread == 0.0:
        return math.inf
    return RADIUS / spread


@jit(entry=False, refcount=False)
def evaluate(coef, s):
    """Return ``sum_n coef[n] s^n`` by Horner's rule."""
    total = 0.0
    for n in range(coef.shape[0] - 1, 0, -1):
        total = (total + coef[n]) * s
    return total


@jit(entry=False, refcount=False)
def odd_difference(coef, s):
    """Return ``F(s) - F(-s) = 2 sum_{n odd} coef[n] s^n``."""
    s2 = s * s
    total = 0.0
    top = coef.shape[0] - 1
    if top % 2 == 0:
        top -= 1
    for n in range(top, 0, -2):
        total = total * s2 + coef[n]
    return 2.0 * s * total
