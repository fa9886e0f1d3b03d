r"""Variance-preserving weight initializers, with the semantics of ``torch.nn.init``.

Every initializer is called as ``NAME(shape, rng=None, **options)`` and returns
a new float64, C-contiguous array of ``shape``. Weights have the shape
``(n_out, n_in)`` of a ``torch.nn.Linear`` weight, or ``(n_out, n_in, *kernel)``
for a convolution, so that

* ``fan_in = shape[1] * receptive_field`` and
* ``fan_out = shape[0] * receptive_field``, where
  ``receptive_field = prod(shape[2:])`` (1 for a dense layer).

Fans need at least two dimensions: biases are usually initialized with
:func:`zeros`.

Variances
---------
The aim is to keep the variance of activations (forward pass) or of gradients
(backward pass) roughly constant from layer to layer:

=================  ====================================================
LeCun              ``Var = 1 / fan_in``
Xavier / Glorot    ``Var = gain**2 * 2 / (fan_in + fan_out)``
He / Kaiming       ``Var = gain**2 / fan``, with ``fan`` = fan_in or fan_out;
                   for ReLU ``gain**2 = 2``, so ``Var = 2 / fan_in``
=================  ====================================================

For a leaky ReLU of negative slope ``a`` the gain is ``sqrt(2 / (1 + a**2))``
(see :func:`calculate_gain`). The ``*_normal`` variants draw from
``N(0, Var)``; the ``*_uniform`` variants draw from ``U(-bound, bound)`` with
``bound = sqrt(3 * Var)``, which has the same variance. Hence Xavier uniform
uses ``bound = gain * sqrt(6 / (fan_in + fan_out))`` and He uniform for ReLU
uses ``bound = sqrt(6 / fan_in)``.

``torch.nn.init`` has no LeCun initializer; here :func:`lecun_normal` and
:func:`lecun_uniform` are Kaiming with gain 1 (``nonlinearity="linear"``) and
mode ``"fan_in"``.

Xavier/Glorot, as published
---------------------------
Some write-ups quote Xavier initialization as ``Var = 1 / (n_in + n_out)``, or
as a uniform draw in ``±sqrt(1 / (n_in + n_out))``. Neither is what Glorot &
Bengio (2010) propose: their "normalized initialization" is
``Var = 2 / (n_in + n_out)``, i.e. ``U(-b, b)`` with
``b = sqrt(6 / (n_in + n_out))``. fastgrad implements Glorot's formula, as do
``torch.nn.init`` and Keras.

Differences from Keras
----------------------
* Keras kernels have the shape ``(n_in, n_out)``: transpose a Keras kernel
  before comparing it with a fastgrad (or PyTorch) weight.
* Keras' ``*_normal`` initializers (``glorot_normal``, ``he_normal``,
  ``lecun_normal``) draw from a normal truncated at two standard deviations,
  with the standard deviation divided by ``0.87962566103423978`` (the
  standard deviation of a unit normal truncated to ``[-2, 2]``), so that the
  variance is still the target. fastgrad, like PyTorch, draws these from an
  untruncated normal; use :func:`trunc_normal` for a truncated one.

Random numbers
--------------
``rng`` is ``None`` (a fresh ``numpy.random.default_rng()``), an ``int`` seed
(``numpy.random.default_rng(seed)``: the same seed gives the same array) or a
``numpy.random.Generator``, which is used as is and advanced. The streams are
numpy's, so arrays do not match PyTorch's bit for bit, only in distribution.

Examples
--------
>>> from fastgrad import init
>>> w = init.get("he_normal")((4, 3), rng=0)
>>> w.shape, w.dtype
((4, 3), dtype('float64'))
>>> bool(abs(init.xavier_uniform((4, 3), rng=0)).max() <= (6 / 7) ** 0.5)
True
"""

import math
import numbers
import operator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "INITIALIZERS",
    "calculate_gain",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "orthogonal",
    "trunc_normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]

_LINEAR_FNS = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
_NONLINEARITIES = (*_LINEAR_FNS, "sigmoid", "tanh", "relu", "leaky_relu", "selu")
_MODES = ("fan_in", "fan_out")


# --------------------------------------------------------------------------- helpers


def _shape(shape):
    """Return ``shape`` as a tuple of non-negative ints, or raise."""
    dims = (shape,) if not isinstance(shape, (tuple, list)) else tuple(shape)
    out = []
    for d in dims:
        if isinstance(d, bool):
            raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}")
        try:
            d = operator.index(d)
        except TypeError:
            raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
        if d < 0:
            raise ValueError(f"shape must not have negative dimensions, got {shape!r}")
        out.append(d)
    if math.prod(out) * 8 >= 2**63:
        raise ValueError(f"shape {shape!r} holds more float64 values than can be addressed")
    return tuple(out)


def _generator(rng):
    """Return the ``numpy.random.Generator`` that ``rng`` stands for, or raise."""
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng as a seed must be a non-negative integer, got {rng!r}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}"
    )


def _finite(value):
    """Whether a real number is finite in float64 (an int beyond its range is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _real(name, value, *, minimum=None):
    """Return ``value`` as a finite float (``>= minimum`` if given), or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float64's range
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    value = number
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def _fans(shape):
    """Return ``(fan_in, fan_out)`` of a weight of ``shape`` (a checked tuple)."""
    if len(shape) < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than "
            f"2 dimensions (got shape {shape}); biases are usually initialized "
            "with `zeros`"
        )
    receptive_field = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive_field, shape[0] * receptive_field
    if fan_in == 0 or fan_out == 0:
        raise ValueError(
            f"cannot initialize a zero-sized weight of shape {shape}: "
            f"fan_in={fan_in}, fan_out={fan_out} (both must be positive)"
        )
    return fan_in, fan_out


def _draw(shape, rng, std, dist):
    """Draw a zero-mean array of ``shape`` with standard deviation ``std``.

    ``dist`` is ``"normal"`` (``N(0, std**2)``) or ``"uniform"``
    (``U(-bound, bound)`` with ``bound = sqrt(3) * std``).
    """
    out = np.empty(shape, dtype=np.float64)
    if dist == "normal":
        rng.standard_normal(out=out)
        out *= std
    else:
        # 2u - 1 is exact for u in [0, 1), so |out| <= bound holds exactly.
        rng.random(out=out)
        out *= 2.0
        out -= 1.0
        out *= math.sqrt(3.0) * std
    return out


def _kaiming_std(shape, a, mode, nonlinearity):
    """Return the standard deviation ``gain / sqrt(fan)`` of Kaiming."""
    if not isinstance(mode, str) or mode.lower() not in _MODES:
        raise ValueError(f"mode {mode!r} not supported, please use one of {list(_MODES)}")
    fan_in, fan_out = _fans(shape)
    fan = fan_in if mode.lower() == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def _xavier_std(shape, gain):
    """Return the standard deviation ``gain * sqrt(2 / (fan_in + fan_out))`` of Xavier."""
    gain = _real("gain", gain, minimum=0.0)
    fan_in, fan_out = _fans(shape)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def _lecun_std(shape):
    """Return the standard deviation ``1 / sqrt(fan_in)`` of LeCun."""
    fan_in, _ = _fans(shape)
    return 1.0 / math.sqrt(fan_in)


# Wichura's algorithm AS 241 (Applied Statistics 37(3), 1988, pp. 477-484):
# rational approximations of the standard normal quantile, relative error
# about 1e-16. Coefficients are listed highest degree first, for np.polyval.
_AS241_CENTRAL = (
    (2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4,
     4.5921953931549871457e4, 1.3731693765509461125e4, 1.9715909503065514427e3,
     1.3314166789178437745e2, 3.3871328727963666080e0),
    (5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4,
     2.1213794301586595867e4, 5.3941960214247511077e3, 6.8718700749205790830e2,
     4.2313330701600911252e1, 1.0),
)  # fmt: skip
_AS241_NEAR = (
    (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
     1.27045825245236838258e0, 3.64784832476320460504e0, 5.76949722146069140550e0,
     4.63033784615654529590e0, 1.42343711074968357734e0),
    (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
     1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e0,
     2.05319162663775882187e0, 1.0),
)  # fmt: skip
_AS241_FAR = (
    (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
     2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e0,
     5.46378491116411436990e0, 6.65790464350110377720e0),
    (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
     7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
     5.99832206555887937690e-1, 1.0),
)  # fmt: skip


def _norm_ppf(p):
    """Return the standard normal quantile ``Phi^-1(p) = sqrt(2) * erfinv(2p - 1)``.

    Algorithm AS 241, vectorized. ``p`` equal to 0 or 1 gives about -/+37.5
    (the quantile of the smallest positive double) instead of an infinity.
    """
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    x = np.empty_like(p)
    central = np.abs(q) <= 0.425
    qc = q[central]
    r = 0.180625 - qc * qc
    x[central] = qc * np.polyval(_AS241_CENTRAL[0], r) / np.polyval(_AS241_CENTRAL[1], r)
    qt, pt = q[~central], p[~central]
    tail = np.maximum(np.where(qt < 0.0, pt, 1.0 - pt), np.finfo(np.float64).smallest_subnormal)
    r = np.sqrt(-np.log(tail))
    near = np.polyval(_AS241_NEAR[0], r - 1.6) / np.polyval(_AS241_NEAR[1], r - 1.6)
    far = np.polyval(_AS241_FAR[0], r - 5.0) / np.polyval(_AS241_FAR[1], r - 5.0)
    xt = np.where(r <= 5.0, near, far)
    x[~central] = np.where(qt < 0.0, -xt, xt)
    return x


def _norm_cdf(x):
    """Return the standard normal CDF of a float, accurate in the lower tail."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# ---------------------------------------------------------------------- initializers


def zeros(shape, rng=None):
    """Return an array of zeros (the usual initialization of biases).

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the array.
    rng : None, int or numpy.random.Generator, optional
        Accepted (and checked) for a uniform signature; not used.

    Returns
    -------
    numpy.ndarray
        float64 array of zeros.

    Raises
    ------
    TypeError
        If ``shape`` or ``rng`` has the wrong type.
    ValueError
        If ``shape`` has a negative dimension.

    Examples
    --------
    >>> zeros(3)
    array([0., 0., 0.])
    """
    shape = _shape(shape)
    _generator(rng)
    return np.zeros(shape, dtype=np.float64)


def normal(shape, rng=None, mean=0.0, std=1.0):
    """Draw from the normal distribution ``N(mean, std**2)``.

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the array.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness (see the module documentation).
    mean : float, optional
        Mean of the distribution.
    std : float, optional
        Standard deviation, ``>= 0``.

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``shape`` has a negative dimension, ``std < 0`` or an option is not
        finite.

    Examples
    --------
    >>> normal((2, 3), rng=0, std=0.5).shape
    (2, 3)
    """
    shape, rng = _shape(shape), _generator(rng)
    mean, std = _real("mean", mean), _real("std", std, minimum=0.0)
    out = _draw(shape, rng, std, "normal")
    out += mean
    return out


def uniform(shape, rng=None, a=0.0, b=1.0):
    """Draw from the uniform distribution ``U(a, b)``.

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the array.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness (see the module documentation).
    a, b : float, optional
        Lower and upper bounds, ``a <= b``.

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape`` with values in ``[a, b]``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``shape`` has a negative dimension, ``a > b`` or ``b - a`` is not
        finite.

    Examples
    --------
    >>> x = uniform(100, rng=0, a=-1.0, b=1.0)
    >>> bool(x.min() >= -1.0 and x.max() <= 1.0)
    True
    """
    shape, rng = _shape(shape), _generator(rng)
    a, b = _real("a", a), _real("b", b)
    if a > b:
        raise ValueError(f"uniform needs a <= b, got a={a!r}, b={b!r}")
    if not math.isfinite(b - a):
        raise ValueError(f"b - a overflows, got a={a!r}, b={b!r}")
    out = np.empty(shape, dtype=np.float64)
    rng.random(out=out)
    out *= b - a
    out += a
    return np.clip(out, a, b, out=out)


def trunc_normal(shape, rng=None, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Draw from ``N(mean, std**2)`` truncated to ``[a, b]``.

    As in ``torch.nn.init.trunc_normal_``, ``a`` and ``b`` are absolute cut
    points (not multiples of ``std``) and the sampling is by inverse CDF: with
    ``alpha = (a - mean) / std`` and ``beta = (b - mean) / std``, a uniform
    ``p`` in ``[Phi(alpha), Phi(beta)]`` is mapped to
    ``mean + std * Phi^-1(p)``, and the result is clipped into ``[a, b]``.
    ``Phi^-1(p) = sqrt(2) * erfinv(2p - 1)`` is computed with Wichura's
    algorithm AS 241 (relative error about 1e-16). When the interval lies
    mostly above the mean, its mirror image is sampled and negated, so that
    the probabilities stay small numbers with full relative precision. The
    draw is therefore exact (to rounding) even far in a tail, where
    PyTorch's ``erfinv(2p - 1)`` loses its precision and only warns.

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the array.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness (see the module documentation).
    mean : float, optional
        Mean of the normal before truncation.
    std : float, optional
        Standard deviation of the normal before truncation, ``> 0``.
    a, b : float, optional
        Finite cut points, ``a < b``.

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape`` with values in ``[a, b]``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``shape`` has a negative dimension, ``std <= 0``, ``a >= b``, an
        option is not finite, or ``[a, b]`` lies so far in a tail (about 38
        standard deviations) that its probability underflows.

    Examples
    --------
    >>> x = trunc_normal(1000, rng=0, std=0.02, a=-0.04, b=0.04)
    >>> bool(x.min() >= -0.04 and x.max() <= 0.04)
    True
    """
    shape, rng = _shape(shape), _generator(rng)
    mean, std = _real("mean", mean), _real("std", std)
    a, b = _real("a", a), _real("b", b)
    if std <= 0.0:
        raise ValueError(f"std must be > 0, got {std!r}")
    if not a < b:
        raise ValueError(f"trunc_normal needs a < b, got a={a!r}, b={b!r}")
    alpha, beta = (a - mean) / std, (b - mean) / std
    flip = alpha + beta > 0.0
    if flip:
        alpha, beta = -beta, -alpha
    lo, hi = _norm_cdf(alpha), _norm_cdf(beta)
    if not hi > lo:
        raise ValueError(
            f"[a, b] = [{a!r}, {b!r}] has zero probability (to double precision) "
            f"under N({mean!r}, {std!r}**2); move the interval closer to the mean"
        )
    p = np.empty(shape, dtype=np.float64)
    rng.random(out=p)
    p *= hi - lo
    p += lo
    z = _norm_ppf(p)
    if flip:
        z = np.negative(z, out=z)
    z *= std
    z += mean
    return np.clip(z, a, b, out=z)


def orthogonal(shape, rng=None, gain=1.0):
    """Draw a (semi-)orthogonal matrix, as in Saxe et al. (2013).

    The algorithm of ``torch.nn.init.orthogonal_``: the trailing dimensions
    are flattened to ``(rows, cols) = (shape[0], prod(shape[1:]))``; a
    standard normal matrix of that shape, transposed if ``rows < cols``, is
    factored as ``Q R``; the columns of ``Q`` are multiplied by the signs of
    ``diag(R)`` (which makes ``Q`` Haar-distributed, Mezzadri 2007); ``Q`` is
    transposed back, reshaped and scaled by ``gain``. Rows are then
    orthonormal (``W W^T = gain**2 I``) if ``rows <= cols``, and columns
    otherwise (``W^T W = gain**2 I``).

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the array, at least two dimensions.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness (see the module documentation).
    gain : float, optional
        Scaling factor.

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape``; an empty one if ``shape`` has a zero
        dimension (like PyTorch, which leaves zero-element tensors alone).

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``shape`` has fewer than two dimensions or a negative one, or
        ``gain`` is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> w = orthogonal((3, 5), rng=0)
    >>> bool(np.allclose(w @ w.T, np.eye(3)))
    True
    """
    shape, rng = _shape(shape), _generator(rng)
    gain = _real("gain", gain)
    if len(shape) < 2:
        raise ValueError(f"orthogonal needs a shape with 2 or more dimensions, got {shape}")
    rows, cols = shape[0], math.prod(shape[1:])
    if rows * cols == 0:
        return np.zeros(shape, dtype=np.float64)
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    # sign(diag(R)), with 0 (an event of probability zero) counted as +1.
    q *= np.where(np.diagonal(r) < 0.0, -1.0, 1.0)
    if rows < cols:
        q = q.T
    return np.ascontiguousarray(q).reshape(shape) * gain


# --------------------------------------------------- fan-based normal/uniform pairs
#
# Each family (LeCun, Xavier, Kaiming) has a normal and a uniform initializer
# with the same parameters and errors. Their docstrings are one template: a
# function keeps its one-line summary in its own source, and the family's
# ``doc_par`` (its options, as numba-stats keeps a distribution's parameters)
# and the shared sections are appended when the module is imported.

_FAN_BASED_DOC = """
{about}

Parameters
----------
shape : int or tuple of int
    Shape ``(n_out, n_in, *kernel)`` of the weight.
rng : None, int or numpy.random.Generator, optional
    Source of randomness (see the module documentation).
{doc_par}
Returns
-------
numpy.ndarray
    float64 array of ``shape``, drawn from {law}.

Raises
------
TypeError
    If {type_error} has the wrong type.
ValueError
    If ``shape`` has fewer than two dimensions, or a zero or negative one{value_error}.

See Also
--------
{pair} : The same variance, drawn from {other_law}.

Examples
--------
{example}
"""

_LAWS = {
    "normal": "``N(0, std**2)``",
    "uniform": "``U(-bound, bound)``, ``bound = sqrt(3) * std``",
}
_PAIRS = {"normal": "uniform", "uniform": "normal"}


@dataclass(frozen=True)
class _Family:
    """What the normal and the uniform initializer of one variance rule share in their docs.

    ``about`` may name ``{dist}``; ``bound_4x3`` is the uniform bound of a
    ``(4, 3)`` weight at the default options, which the uniform example checks.
    """

    prefix: str
    about: str
    doc_par: str
    type_error: str
    value_error: str
    bound_4x3: str

    def documented(self, dist):
        """Return a decorator that completes an initializer's one-line docstring."""

        def complete(fn):
            name, pair = f"{self.prefix}_{dist}", f"{self.prefix}_{_PAIRS[dist]}"
            if fn.__name__ != name or not fn.__doc__:
                raise AssertionError(f"{fn.__name__} is documented as {name}, with a summary")
            if dist == "normal":
                example = f">>> {name}((4, 3), rng=0).shape\n(4, 3)"
            else:
                example = f">>> bool(abs({name}((4, 3), rng=0)).max() <= {self.bound_4x3})\nTrue"
            fn.__doc__ = (
                fn.__doc__.rstrip()
                + "\n"
                + _FAN_BASED_DOC.format(
                    about=self.about.format(dist=dist),
                    doc_par=self.doc_par,
                    law=_LAWS[dist],
                    other_law=_LAWS[_PAIRS[dist]],
                    pair=pair,
                    type_error=self.type_error,
                    value_error=self.value_error,
                    example=example,
                )
            )
            return fn

        return complete


_GAIN_DOC = """\
gain : float, optional
    Scaling factor, ``>= 0``; see :func:`calculate_gain`.
"""

_KAIMING_DOC = """\
a : float, optional
    Negative slope of the rectifier after this layer (only used with
    ``"leaky_relu"``).
mode : {"fan_in", "fan_out"}, optional
    ``"fan_in"`` preserves the variance of activations in the forward
    pass, ``"fan_out"`` that of gradients in the backward pass. Case is
    ignored, as in PyTorch.
nonlinearity : str, optional
    Name accepted by :func:`calculate_gain`; meant for ``"relu"`` or
    ``"leaky_relu"``.
"""

_LECUN = _Family(
    prefix="lecun",
    about="PyTorch has no LeCun initializer: this is ``kaiming_{dist}`` with\n"
    '``nonlinearity="linear"`` (gain 1) and ``mode="fan_in"``.',
    doc_par="",
    type_error="an argument",
    value_error="",
    bound_4x3="1.0",
)
_XAVIER = _Family(
    prefix="xavier",
    about="Glorot & Bengio (2010). Also available as :func:`glorot_{dist}`.",
    doc_par=_GAIN_DOC,
    type_error="an argument",
    value_error=",\n    or ``gain`` is negative or not finite",
    bound_4x3="(6 / 7) ** 0.5",
)
_KAIMING = _Family(
    prefix="kaiming",
    about="He et al. (2015). ``gain = calculate_gain(nonlinearity, a)``; the defaults\n"
    "(leaky ReLU of slope 0, i.e. ReLU) give ``std = sqrt(2 / fan_in)``. Also\n"
    "available as :func:`he_{dist}`.",
    doc_par=_KAIMING_DOC,
    type_error="``shape`` or ``rng``",
    value_error=",\n    or ``mode``, ``nonlinearity`` or ``a`` is not valid",
    bound_4x3="2 ** 0.5",
)


@_LECUN.documented("normal")
def lecun_normal(shape, rng=None):
    """LeCun normal: ``N(0, std**2)`` with ``std = 1 / sqrt(fan_in)``."""
    shape = _shape(shape)
    return _draw(shape, _generator(rng), _lecun_std(shape), "normal")


@_LECUN.documented("uniform")
def lecun_uniform(shape, rng=None):
    """LeCun uniform: ``U(-bound, bound)`` with ``bound = sqrt(3 / fan_in)``."""
    shape = _shape(shape)
    return _draw(shape, _generator(rng), _lecun_std(shape), "uniform")


@_XAVIER.documented("normal")
def xavier_normal(shape, rng=None, gain=1.0):
    """Xavier/Glorot normal: ``N(0, std**2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    shape = _shape(shape)
    return _draw(shape, _generator(rng), _xavier_std(shape, gain), "normal")


@_XAVIER.documented("uniform")
def xavier_uniform(shape, rng=None, gain=1.0):
    """Xavier/Glorot uniform: ``U(-b, b)`` with ``b = gain * sqrt(6 / (fan_in + fan_out))``."""
    shape = _shape(shape)
    return _draw(shape, _generator(rng), _xavier_std(shape, gain), "uniform")


@_KAIMING.documented("normal")
def kaiming_normal(shape, rng=None, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """Kaiming/He normal: ``N(0, std**2)`` with ``std = gain / sqrt(fan)``."""
    shape = _shape(shape)
    return _draw(shape, _generator(rng), _kaiming_std(shape, a, mode, nonlinearity), "normal")


@_KAIMING.documented("uniform")
def kaiming_uniform(shape, rng=None, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """Kaiming/He uniform: ``U(-bound, bound)`` with ``bound = gain * sqrt(3 / fan)``."""
    shape = _shape(shape)
    return _draw(shape, _generator(rng), _kaiming_std(shape, a, mode, nonlinearity), "uniform")


glorot_normal = xavier_normal
glorot_uniform = xavier_uniform
he_normal = kaiming_normal
he_uniform = kaiming_uniform


def calculate_gain(nonlinearity, param=None):
    r"""Return the recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    ==========================================  ===========================
    nonlinearity                                gain
    ==========================================  ===========================
    ``linear``, ``conv{1,2,3}d``,               1
    ``conv_transpose{1,2,3}d``, ``sigmoid``
    ``tanh``                                    5/3
    ``relu``                                    sqrt(2)
    ``leaky_relu``                              sqrt(2 / (1 + slope**2))
    ``selu``                                    3/4
    ==========================================  ===========================

    For SELU self-normalizing networks PyTorch recommends
    ``nonlinearity="linear"`` (variance ``1 / fan_in``) rather than
    ``"selu"``.

    Parameters
    ----------
    nonlinearity : str
        One of the names above.
    param : float, optional
        Negative slope of ``"leaky_relu"``; 0.01 if None. Ignored by the other
        nonlinearities.

    Returns
    -------
    float
        The gain.

    Raises
    ------
    ValueError
        If ``nonlinearity`` is unknown (the message lists the valid names), or
        ``param`` of ``"leaky_relu"`` is not a finite number (as in PyTorch).

    Examples
    --------
    >>> calculate_gain("relu") == 2 ** 0.5
    True
    >>> calculate_gain("leaky_relu", 1.0)
    1.0
    """
    if not isinstance(nonlinearity, str) or nonlinearity not in _NONLINEARITIES:
        raise ValueError(
            f"Unsupported nonlinearity {nonlinearity!r}; valid names are "
            f"{', '.join(_NONLINEARITIES)}"
        )
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4.0
    if param is None:
        slope = 0.01
    elif isinstance(param, bool) or not isinstance(param, numbers.Real) or not _finite(param):
        raise ValueError(f"negative_slope {param!r} not a valid number")
    else:
        slope = float(param)
    return math.sqrt(2.0 / (1.0 + slope * slope))


INITIALIZERS = {
    "zeros": zeros,
    "normal": normal,
    "uniform": uniform,
    "trunc_normal": trunc_normal,
    "orthogonal": orthogonal,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "kaiming_normal": kaiming_normal,
    "kaiming_uniform": kaiming_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}


KAIMING = ("kaiming_normal", "kaiming_uniform", "he_normal", "he_uniform")
"""The names of the He/Kaiming initializers, whose gain follows the rectifier's slope ``a``."""


def get(name):
    """Return the initializer called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`INITIALIZERS`, e.g. ``"he_normal"``.

    Returns
    -------
    callable
        ``init(shape, rng=None, **options)``.

    Raises
    ------
    ValueError
        If ``name`` is not a known initializer; the message lists the valid
        names.

    Examples
    --------
    >>> get("glorot_uniform") is xavier_uniform
    True
    """
    if isinstance(name, str) and name in INITIALIZERS:
        return INITIALIZERS[name]
    raise ValueError(
        f"unknown initializer {name!r}; valid names are {', '.join(sorted(INITIALIZERS))}"
    )
