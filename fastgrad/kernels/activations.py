"""Scalar activations, their derivatives and their exact differences.

Every function takes an integer activation code (the constants below) and
float64 scalars. The dispatch on the code is a chain of comparisons that the
compiler hoists out of the loops that call these functions.

``difference(code, z, delta)`` returns ``phi(z + delta) - phi(z)`` computed
without subtracting two nearly equal numbers wherever an identity allows it
(``tanh``, ``sigmoid``, ``softplus``, the exponential side of ``elu``, and
the linear pieces of ``relu`` and ``leaky_relu``). The finite-difference
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

LEAKY_SLOPE = 0.01


@jit()
def sigmoid_pair(z):
    """Return ``(sigmoid(z), 1 - sigmoid(z))``, each accurate to rounding."""
    if z >= 0.0:
        e = math.exp(-z)
        return 1.0 / (1.0 + e), e / (1.0 + e)
    e = math.exp(z)
    return e / (1.0 + e), 1.0 / (1.0 + e)


@jit()
def softplus(z):
    """Return ``log(1 + exp(z))`` without overflow."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@jit()
def activate(code, z):
    """Return ``phi(z)`` for the activation ``code``."""
    if code == RELU:
        return z if z > 0.0 else 0.0
    if code == LEAKY_RELU:
        return z if z > 0.0 else LEAKY_SLOPE * z
    if code == TANH:
        return math.tanh(z)
    if code == SIGMOID:
        return sigmoid_pair(z)[0]
    if code == ELU:
        return z if z > 0.0 else math.expm1(z)
    if code == SOFTPLUS:
        return softplus(z)
    return z


@jit()
def derivative(code, z):
    """Return ``phi'(z)``; at the kink of ``relu``/``leaky_relu`` the left slope."""
    if code == RELU:
        return 1.0 if z > 0.0 else 0.0
    if code == LEAKY_RELU:
        return 1.0 if z > 0.0 else LEAKY_SLOPE
    if code == TANH:
        e = math.exp(-2.0 * abs(z))
        return 4.0 * e / ((1.0 + e) * (1.0 + e))
    if code == SIGMOID:
        s, t = sigmoid_pair(z)
        return s * t
    if code == ELU:
        return 1.0 if z > 0.0 else math.exp(z)
    if code == SOFTPLUS:
        return sigmoid_pair(z)[0]
    return 1.0


@jit()
def is_kinked(code):
    """Whether the activation has a point where it is not differentiable (at 0)."""
    return code == RELU or code == LEAKY_RELU


@jit()
def is_piecewise_linear(code):
    """Whether the activation is linear on each side of 0."""
    return code == IDENTITY or code == RELU or code == LEAKY_RELU


@jit()
def difference(code, z, delta):
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
            return LEAKY_SLOPE * delta
        return (w if w > 0.0 else LEAKY_SLOPE * w) - (z if z > 0.0 else LEAKY_SLOPE * z)
    if code == TANH:
        # tanh(z + d) - tanh(z) = tanh(d) sech^2(z) / (1 + tanh(z) tanh(d))
        td = math.tanh(delta)
        e = math.exp(-2.0 * abs(z))
        sech2 = 4.0 * e / ((1.0 + e) * (1.0 + e))
        return td * sech2 / (1.0 + math.tanh(z) * td)
    if code == SIGMOID:
        # with s = sigmoid(z), c = 1 - s and m = expm1(-d):
        # sigmoid(z + d) - sigmoid(z) = -s c m / (1 + c m)
        s, c = sigmoid_pair(z)
        m = math.expm1(-delta)
        return -s * c * m / (1.0 + c * m)
    if code == ELU:
        if z > 0.0 and w > 0.0:
            return delta
        if z <= 0.0 and w <= 0.0:
            return math.exp(z) * math.expm1(delta)
        return (w if w > 0.0 else math.expm1(w)) - (z if z > 0.0 else math.expm1(z))
    if code == SOFTPLUS:
        return math.log1p(sigmoid_pair(z)[0] * math.expm1(delta))
    return delta
