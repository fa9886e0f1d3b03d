"""Scalar activations, their derivatives and their exact differences.

Every function takes an integer activation code (the constants below), the
activation's parameter and float64 scalars. The parameter is leaky relu's
negative slope ``a`` (``phi(z) = a z`` for ``z <= 0``), elu's ``alpha``
(``alpha expm1(z)`` for ``z <= 0``) and softplus' ``beta`` (``phi(z) =
log(1 + exp(beta z)) / beta``), torch's parametrizations; the other codes
ignore it. Defaults: :data:`LEAKY_SLOPE`, :data:`ELU_ALPHA`,
:data:`SOFTPLUS_BETA`. The dispatch on the code is a chain of comparisons that the
compiler hoists out of the loops that call these functions.

``difference(code, param, z, delta)`` returns ``phi(z + delta) - phi(z)`` computed
without subtracting two nearly equal numbers wherever an identity allows it
(``tanh``, ``sigmoid``, ``softplus``, the exponential side of ``elu``, and
the linear pieces of ``relu`` and ``leaky_relu``), for any step: small ones
and ones that push a saturated unit across to the other saturation alike. The finite-difference
kernels carry perturbations through the network as such differences, which
is why their centered differences lose far less to cancellation than the
textbook ``J(theta + eps) - J(theta - eps)``.
"""

import math

from ._jit import jit

IDENTITY = 0
RELU = 1
LEAKY_RELU = 2
TANH = 3
SIGMOID = 4
ELU = 5
SOFTPLUS = 6

PIECEWISE_LINEAR = (IDENTITY, RELU, LEAKY_RELU)
"""The codes of the activations linear on each side of 0 (:func:`is_piecewise_linear`)."""

LEAKY_SLOPE = 0.01
"""Default negative slope of leaky relu."""

ELU_ALPHA = 1.0
"""Default ``alpha`` of elu."""

SOFTPLUS_BETA = 1.0
"""Default ``beta`` of softplus."""


@jit(entry=False)
def sigmoid_pair(z):
    """Return ``(sigmoid(z), 1 - sigmoid(z))``, each accurate to rounding."""
    if z >= 0.0:
        e = math.exp(-z)
        return 1.0 / (1.0 + e), e / (1.0 + e)
    e = math.exp(z)
    return e / (1.0 + e), 1.0 / (1.0 + e)


@jit(entry=False)
def softplus(z):
    """Return ``log(1 + exp(z))`` without overflow."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@jit(entry=False)
def activate(code, param, z):
    """Return ``phi(z)`` for the activation ``code`` with parameter ``param``."""
    if code == RELU:
        return z if z > 0.0 else 0.0
    if code == LEAKY_RELU:
        return z if z > 0.0 else param * z
    if code == TANH:
        return math.tanh(z)
    if code == SIGMOID:
        return sigmoid_pair(z)[0]
    if code == ELU:
        return z if z > 0.0 else param * math.expm1(z)
    if code == SOFTPLUS:
        return softplus(param * z) / param
    return z


@jit(entry=False)
def derivative(code, param, z):
    """Return ``phi'(z)``; at the kink of ``relu``/``leaky_relu``/``elu`` the left slope."""
    if code == RELU:
        return 1.0 if z > 0.0 else 0.0
    if code == LEAKY_RELU:
        return 1.0 if z > 0.0 else param
    if code == TANH:
        e = math.exp(-2.0 * abs(z))
        return 4.0 * e / ((1.0 + e) * (1.0 + e))
    if code == SIGMOID:
        s, t = sigmoid_pair(z)
        return s * t
    if code == ELU:
        return 1.0 if z > 0.0 else param * math.exp(z)
    if code == SOFTPLUS:
        return sigmoid_pair(param * z)[0]
    return 1.0


@jit(entry=False)
def is_kinked(code, param):
    """Whether the activation has a point where it is not differentiable (at 0).

    relu always; leaky relu unless its slope is 1 (the identity); elu unless
    ``alpha`` is 1, where its slope jumps from ``alpha`` to 1.
    """
    return code == RELU or ((code == LEAKY_RELU or code == ELU) and param != 1.0)


@jit(entry=False)
def is_piecewise_linear(code):
    """Whether the activation is linear on each side of 0."""
    return code == IDENTITY or code == RELU or code == LEAKY_RELU


@jit(entry=False)
def difference(code, param, z, delta):
    """Return ``phi(z + delta) - phi(z)`` without catastrophic cancellation."""
    if code == IDENTITY:
        return delta
    w = z + delta
    if code == RELU:
        if z > 0.0 and w > 0.0:
            return delta
        if z <= 0.0 and w <= 0.0:
            return 0.0
        return (w if w > 0.0 else 0.0) - (z if z > 0.0 else 0.0)
    if code == LEAKY_RELU:
        if z > 0.0 and w > 0.0:
            return delta
        if z <= 0.0 and w <= 0.0:
            return param * delta
        return (w if w > 0.0 else param * w) - (z if z > 0.0 else param * z)
    if code == TANH:
        # tanh(z + d) - tanh(z) = tanh(d) sech^2(z) / (1 + tanh(z) tanh(d))
        td = math.tanh(delta)
        e = math.exp(-2.0 * abs(z))
        sech2 = 4.0 * e / ((1.0 + e) * (1.0 + e))
        below = 1.0 + math.tanh(z) * td
        if below >= 0.5:
            return td * sech2 / below
        # a saturated unit pushed across: the denominator cancels; tanh(x) = 2 sigmoid(2x) - 1
        return 2.0 * sigmoid_difference(2.0 * z, 2.0 * delta)
    if code == SIGMOID:
        # with s = sigmoid(z), c = 1 - s and m = expm1(-d):
        # sigmoid(z + d) - sigmoid(z) = -s c m / (1 + c m)
        s, c = sigmoid_pair(z)
        m = math.expm1(-delta)
        below = 1.0 + c * m
        if below >= 0.5:
            return -s * c * m / below
        return sigmoid_difference(z, delta)
    if code == ELU:
        if z > 0.0 and w > 0.0:
            return delta
        if z <= 0.0 and w <= 0.0:
            if delta < 700.0:
                return param * math.exp(z) * math.expm1(delta)
            # expm1 would overflow: exp(w) - exp(z) factored at w instead
            return -param * math.exp(w) * math.expm1(-delta)
        return (w if w > 0.0 else param * math.expm1(w)) - (z if z > 0.0 else param * math.expm1(z))
    if code == SOFTPLUS:
        # softplus(beta z) / beta: the difference of softplus at beta z, scaled back
        s, c = sigmoid_pair(param * z)
        return softplus_difference(param * z, param * delta, s, c) / param
    return delta


@jit(entry=False)
def sigmoid_difference(z, delta):
    """Return ``sigmoid(z + delta) - sigmoid(z)`` for any step, however large.

    ``sigmoid(a) - sigmoid(b) = sigmoid(a) (1 - sigmoid(b)) (1 - exp(b - a))``:
    a product of factors that are each accurate, taken with ``a`` the larger
    argument so that ``expm1`` stays in ``(-1, 0)``; it does not cancel where
    ``-s c m / (1 + c m)`` (``m = expm1(-delta)``) does, when a saturated
    unit is pushed across (``z = -30``, ``delta = 50``). Forming ``z +
    delta`` costs a relative ``u |z + delta|``, which only matters next to
    the small steps that :func:`difference` keeps for the other form.
    """
    w = z + delta
    if delta >= 0.0:
        return -sigmoid_pair(w)[0] * sigmoid_pair(z)[1] * math.expm1(-delta)
    return sigmoid_pair(z)[0] * sigmoid_pair(w)[1] * math.expm1(delta)


_SMALLEST_NORMAL = 2.2250738585072014e-308


@jit(entry=False)
def softplus_difference(z, delta, s, c):
    """Return ``softplus(z + delta) - softplus(z)``, given ``(s, c) = sigmoid_pair(z)``.

    ``log1p(s expm1(delta))`` is exact to rounding while its argument stays
    above ``-1/2`` and finite. Below, the argument nears ``-1`` and cancels;
    there ``log(c + s exp(delta))`` sums two positive terms instead, while
    that sum is a normal number (a subnormal one holds too few bits). When
    ``expm1`` overflows (``delta > 709``), or the sum is subnormal (then
    ``z > 708``), ``softplus(x) = x + softplus(-x)`` for ``x = z`` and ``x =
    z + delta`` leaves ``delta`` plus two terms that are small or cancel
    nothing.
    """
    x = s * math.expm1(delta)
    if -0.5 <= x < math.inf:
        return math.log1p(x)
    if delta < 0.0:
        y = c + s * math.exp(delta)
        if y >= _SMALLEST_NORMAL:
            return math.log(y)
    if z > 0.0:
        return delta + (softplus(-(z + delta)) - softplus(-z))
    return softplus(z + delta) - softplus(z)
