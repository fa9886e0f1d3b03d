"""High-precision references, computed with the standard library's ``decimal``.

Every float argument converts to a ``Decimal`` exactly, sums such as ``z + d``
are formed exactly, and the functions are evaluated from their definitions
with enough digits that the subtraction of two nearly equal values loses
nothing that matters; only the final result is rounded to float64. Slow and
obvious, like ``naive.py``; nothing here is shared with fastgrad.
"""

import math
from decimal import Decimal, localcontext

DEFAULTS = {"leaky_relu": 0.01, "elu": 1.0, "softplus": 1.0}


def _split(entry):
    """``(name, Decimal parameter)`` of a name or a ``(name, parameter)`` pair, exactly."""
    if isinstance(entry, str):
        name, param = entry, DEFAULTS.get(entry)
    else:
        name, param = entry
    return name, None if param is None else Decimal(float(param))


def _digits(values, steps=()):
    """Working precision for values of size up to max|values| and steps down to min|steps|.

    ``exp(-|x|)`` next to 1 needs about ``0.44 |x|`` digits; ``|x|`` digits are
    plenty. A step ``d`` needs ``log10(1/|d|)`` more, and 60 spare digits
    cover rounding in the few dozen operations of one evaluation.
    """
    size = max((abs(float(v)) for v in values), default=0.0)
    small = [abs(float(s)) for s in steps if s != 0]
    depth = max((-math.log10(s) for s in small), default=0.0)
    return 60 + int(size) + max(int(depth), 0)


def _exact(value):
    return value if isinstance(value, Decimal) else Decimal(float(value))


def _expm1(x):
    """``exp(x) - 1`` to the current precision, also where ``x`` is far below it."""
    if abs(x) >= Decimal("1e-3"):
        return x.exp() - 1
    total, term, n = Decimal(0), Decimal(1), 0
    while True:  # the series x + x^2/2 + ...: every term is below the one before
        n += 1
        term = term * x / n
        if total + term == total:
            return total
        total += term


def activation(entry, x):
    """``phi(x)`` for a Decimal ``x`` at the current precision.

    ``entry`` is an activation name or a ``(name, parameter)`` pair (leaky
    relu's slope, elu's alpha, softplus' beta), the parameter taken exactly.
    """
    name, param = _split(entry)
    if name == "identity":
        return x
    if name == "relu":
        return x if x > 0 else Decimal(0)
    if name == "leaky_relu":
        return x if x > 0 else param * x
    if name == "tanh":
        e = (2 * x).exp()
        return (e - 1) / (e + 1)
    if name == "sigmoid":
        return 1 / (1 + (-x).exp())
    if name == "elu":
        return x if x > 0 else param * _expm1(x)
    if name == "softplus":
        return (1 + (param * x).exp()).ln() / param
    raise KeyError(name)


def activation_derivative(entry, x):
    """``phi'(x)`` for a Decimal ``x`` at the current precision (left slope at a kink)."""
    name, param = _split(entry)
    if name == "identity":
        return Decimal(1)
    if name == "relu":
        return Decimal(1) if x > 0 else Decimal(0)
    if name == "leaky_relu":
        return Decimal(1) if x > 0 else param
    if name == "tanh":
        e = (2 * x).exp()
        return 4 * e / ((1 + e) * (1 + e))
    if name == "sigmoid":
        e = (-x).exp()
        return e / ((1 + e) * (1 + e))
    if name == "elu":
        return Decimal(1) if x > 0 else param * x.exp()
    if name == "softplus":
        return 1 / (1 + (-param * x).exp())
    raise KeyError(name)


def _scale(entry):
    """How much the activation's parameter stretches its argument (softplus' beta)."""
    name, param = _split(entry)
    return abs(float(param)) if name == "softplus" else 1.0


def activation_value(entry, z):
    """``phi(z)`` of a float, rounded once to float64."""
    with localcontext() as ctx:
        ctx.prec = _digits([z * _scale(entry)])
        return float(activation(entry, _exact(z)))


def derivative_value(entry, z):
    """``phi'(z)`` of a float, rounded once to float64."""
    with localcontext() as ctx:
        ctx.prec = _digits([z * _scale(entry)])
        return float(activation_derivative(entry, _exact(z)))


def activation_difference(entry, z, d):
    """``phi(z + d) - phi(z)`` with ``z + d`` exact, rounded once to float64."""
    scale = _scale(entry)
    with localcontext() as ctx:
        ctx.prec = _digits([z * scale, d * scale], [d * scale])
        z = _exact(z)
        return float(activation(entry, z + _exact(d)) - activation(entry, z))


def sigmoid_pair(z):
    """``(sigmoid(z), 1 - sigmoid(z))``, each rounded once to float64."""
    with localcontext() as ctx:
        ctx.prec = _digits([z])
        s = activation("sigmoid", _exact(z))
        return float(s), float(1 - s)


def sample_loss(output, z, y):
    """Loss of one sample from Decimal logits ``z`` and targets ``y``, from the definitions."""
    y = [_exact(v) for v in y]
    if output == "identity":
        return sum((a - b) ** 2 for a, b in zip(z, y, strict=True)) / 2
    if output == "sigmoid":
        total = Decimal(0)
        for a, b in zip(z, y, strict=True):
            s = 1 / (1 + (-a).exp())
            not_s = 1 / (1 + a.exp())
            total -= b * s.ln() + (1 - b) * not_s.ln()
        return total
    if output == "softmax":
        exps = [a.exp() for a in z]
        norm = sum(exps)
        return -sum(b * (e / norm).ln() for e, b in zip(exps, y, strict=True))
    raise KeyError(output)


def sample_loss_value(output, z, y):
    """:func:`sample_loss` of float logits, rounded once to float64."""
    with localcontext() as ctx:
        ctx.prec = _digits(z)
        return float(sample_loss(output, [_exact(v) for v in z], y))


def loss_difference(output, z, y, dz):
    """``loss(z + dz) - loss(z)`` of one sample, ``z + dz`` exact, rounded once to float64."""
    with localcontext() as ctx:
        ctx.prec = _digits(list(z) + list(dz), dz)
        base = [_exact(v) for v in z]
        moved = [a + _exact(b) for a, b in zip(base, dz, strict=True)]
        return float(sample_loss(output, moved, y) - sample_loss(output, base, y))


def _line_points_difference(output, z, y, u, s, odd):
    """``loss(z + s u)`` less ``loss(z - s u)`` if ``odd`` else ``loss(z)``, exact arguments."""
    with localcontext() as ctx:
        steps = [s * v for v in u]
        ctx.prec = _digits(list(z) + steps, steps) + 40
        base = [_exact(v) for v in z]
        up = [a + _exact(s) * _exact(v) for a, v in zip(base, u, strict=True)]
        down = [a - _exact(s) * _exact(v) for a, v in zip(base, u, strict=True)] if odd else base
        return float(sample_loss(output, up, y) - sample_loss(output, down, y))


def line_difference(output, z, y, u, s):
    """``loss(z + s u) - loss(z)`` of one sample, ``z + s u`` exact, rounded once to float64."""
    return _line_points_difference(output, z, y, u, s, odd=False)


def line_odd_difference(output, z, y, u, s):
    """``loss(z + s u) - loss(z - s u)`` of one sample, exact arguments, rounded once."""
    return _line_points_difference(output, z, y, u, s, odd=True)
