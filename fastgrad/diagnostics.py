r"""Vanishing and exploding signals at initialization, measured beside theory.

:func:`diagnose` draws a network's weights with one or more initializers, runs
one seeded batch forward and backward, and reports for every weight layer
``l = 1 .. L`` (``Z_L`` are the logits):

* forward: ``Var(Z_l)`` of the pre-activations and ``Var(A_l)`` of the hidden
  activations, pooled over the batch and the units;
* backward: the norms ``||dJ/dZ_l||`` and ``||dJ/dA_l||`` (Frobenius, over
  the batch) and the weight-gradient norms ``||dW_l||``.

Theory (the wide-layer limit, every weight independent of the signal)
--------------------------------------------------------------------
With ``n_l`` units in layer ``l``, ``s_l^2 = mean(W_l^2)`` and
``c_l = mean(b_l^2)`` read from the drawn parameters (so any initializer is
covered: ``s_l^2`` is its variance up to sampling noise), and
``q_0 = mean(X^2)``::

    v_1 = n_0 s_1^2 q_0 + c_1
    v_l = n_{l-1} s_l^2 E[phi(z)^2] + c_l,          z ~ N(0, v_{l-1})
    ||dJ/dZ_l|| / ||dJ/dZ_{l+1}|| = sqrt(n_l s_{l+1}^2 E[phi'(z)^2]),   z ~ N(0, v_l)

``v_l`` is the predicted ``Var(Z_l)``; the forward *gain* of layer ``l`` is
``v_l / v_{l-1}`` (``v_1 / q_0`` for the first), and the backward gain is the
ratio of norms above. The expectations are integrals over the normal
density (trapezoid rule, 20,000 points in 10 standard deviations). Cases:

* ReLU: ``E[relu(z)^2] = v / 2`` and ``E[relu'(z)^2] = 1/2``, so both gains are
  ``n s^2 / 2``: He (``s^2 = 2 / n``) gives exactly 1; ``normal(std=s)`` gives
  ``n s^2 / 2`` (0.0128 for ``s = 0.01``, ``n = 256``).
* identity: gains ``n s^2`` (forward) and ``sqrt(n s^2)`` (backward, a norm).
* tanh: ``E[tanh(z)^2] ~ v`` near 0, so LeCun or Xavier (``n s^2 ~ 1``) give a
  gain near 1 for small signals and below 1 as tanh saturates.
* sigmoid: ``phi' <= 1/4``, hence ``||dJ/dZ_l|| <= ||dJ/dA_l|| / 4`` in every
  layer: ten sigmoid layers shrink the backward signal by up to
  ``0.25^10 ~ 9.5e-7``.

Over ``k`` layers of gain ``g`` a signal scales like ``g^k``:
``0.9^20 ~ 0.12`` (vanishing), ``1.2^20 ~ 38`` (exploding).

Flags
-----
Both signals are compared in variance units with the layer where they start:
a layer is flagged ``"forward vanished"`` when ``Var(Z_l) / Var(Z_1)`` is below
``limits[0]`` (default 1e-3), ``"forward exploded"`` when above ``limits[1]``
(1e3) or not finite; likewise ``"backward ..."`` for
``(||dJ/dZ_l|| / ||dJ/dZ_L||)^2``.
"""

import numbers
from dataclasses import dataclass

import numpy as np

from . import init as initializers
from .mlp import MLP

__all__ = ["DiagnosisResult", "LayerSignals", "diagnose", "random_batch"]

DEFAULT_LIMITS = (1e-3, 1e3)


def _phi(name, a):
    """Return a hidden activation and its derivative, in numpy, with its parameter ``a``."""
    return {
        "identity": (lambda z: z, lambda z: np.ones_like(z)),
        "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
        "leaky_relu": (lambda z: np.where(z > 0, z, a * z), lambda z: np.where(z > 0, 1.0, a)),
        "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
        "sigmoid": (
            lambda z: 0.5 + 0.5 * np.tanh(0.5 * z),
            lambda z: 0.25 * (1.0 - np.tanh(0.5 * z) ** 2),
        ),
        "elu": (
            lambda z: np.where(z > 0, z, a * np.expm1(np.minimum(z, 0.0))),
            lambda z: np.where(z > 0, 1.0, a * np.exp(np.minimum(z, 0.0))),
        ),
        "softplus": (
            lambda z: np.logaddexp(0.0, a * z) / a,
            lambda z: 0.5 + 0.5 * np.tanh(0.5 * a * z),
        ),
    }[name]


def random_batch(net, batch, seed=0):
    """Return a seeded batch ``(X, Y)`` (samples in rows) that fits ``net``.

    ``X`` is standard normal ``(batch, n_in)``; ``Y`` holds integer labels for
    cross-entropy, 0/1 targets ``(batch, n_out)`` for binary cross-entropy and
    standard normal targets for mse. The generator is
    ``numpy.random.default_rng([seed, 1])``, a stream apart from the one
    ``net.init(..., seed=seed)`` draws weights from.
    """
    rng = np.random.default_rng([int(seed), 1])
    X = rng.standard_normal((int(batch), net.sizes[0]))
    n_out = net.sizes[-1]
    if net.loss_name == "cross_entropy":
        return X, rng.integers(0, n_out, size=int(batch))
    if net.loss_name == "binary_cross_entropy":
        return X, rng.integers(0, 2, size=(int(batch), n_out)).astype(float)
    return X, rng.standard_normal((int(batch), n_out))


def _mean_square(f, v):
    """Return ``E[f(z)^2]`` for ``z ~ N(0, v)``."""
    x = np.linspace(-10.0, 10.0, 20_000)  # even count: no node at the kink z = 0
    w = np.exp(-0.5 * x * x) * (x[1] - x[0]) / np.sqrt(2.0 * np.pi)
    w[[0, -1]] *= 0.5
    return float(w @ f(np.sqrt(v) * x) ** 2)


@dataclass
class LayerSignals:
    """Per-layer signals of one initializer; arrays are indexed by layer ``l - 1``.

    Attributes
    ----------
    label : str
        The initializer and its options, e.g. ``"normal(std=0.01)"``.
    var_z, var_a : ndarray
        Measured ``Var(Z_l)`` (``L`` layers) and ``Var(A_l)`` (``L - 1`` hidden layers).
    grad_z, grad_a, grad_w : ndarray
        Measured ``||dJ/dZ_l||``, ``||dJ/dA_l||`` (hidden layers) and ``||dW_l||``.
    theory_var_z, theory_gain : ndarray
        Predicted ``Var(Z_l)`` and forward gain of each layer.
    theory_grad_z, theory_grad_gain : ndarray
        Predicted ``||dJ/dZ_l||`` (anchored at the measured ``||dJ/dZ_L||``) and
        backward gain ``||dJ/dZ_l|| / ||dJ/dZ_{l+1}||`` (NaN for ``l = L``).
    input_var : float
        ``Var(X)``.
    flags : list of list of str
        Per layer, e.g. ``["forward vanished", "backward vanished"]``.
    """

    label: str
    var_z: np.ndarray
    var_a: np.ndarray
    grad_z: np.ndarray
    grad_a: np.ndarray
    grad_w: np.ndarray
    theory_var_z: np.ndarray
    theory_gain: np.ndarray
    theory_grad_z: np.ndarray
    theory_grad_gain: np.ndarray
    input_var: float
    flags: list

    @property
    def flagged(self):
        """Layers (1-based) with at least one flag."""
        return [layer for layer, found in enumerate(self.flags, start=1) if found]

    def to_dict(self):
        """Return a JSON-ready dict (NaN and infinities as ``None``)."""
        out = {"label": self.label, "input_var": _clean(self.input_var), "flags": self.flags}
        for name in (
            "var_z",
            "var_a",
            "grad_z",
            "grad_a",
            "grad_w",
            "theory_var_z",
            "theory_gain",
            "theory_grad_z",
            "theory_grad_gain",
        ):
            out[name] = [_clean(x) for x in getattr(self, name)]
        return out


def _clean(x):
    return float(x) if np.isfinite(x) else None


def backward_signals(work):
    """Return ``(dJ/dZ_l for l = 1..L, dJ/dA_l for l = 1..L-1)`` from a workspace."""
    net, n_layers = work.net, len(work.sizes) - 1
    weights = net.packing.unpack(work.theta)
    d_z = [None] * n_layers
    d_a = [None] * (n_layers - 1)
    d_z[-1] = (work.outputs() - work.targets) / work.batch
    for u in range(n_layers - 1, 0, -1):
        d_a[u - 1] = d_z[u] @ weights[f"W{u + 1}"]
        derivative = _phi(net.hidden[u - 1], net.hidden_parameters[u - 1])[1]
        d_z[u - 1] = d_a[u - 1] * derivative(work.block(work.pre, u)) * work.block(work.masks, u)
    return d_z, d_a


def _theory(net, params, q0):
    """Return predicted ``Var(Z_l)``, forward gains and backward gains."""
    n_layers = len(net.sizes) - 1
    s2 = [float(np.mean(params[f"W{u}"] ** 2)) for u in range(1, n_layers + 1)]
    c2 = [float(np.mean(params[f"b{u}"] ** 2)) for u in range(1, n_layers + 1)]
    v = np.empty(n_layers)
    v[0] = net.sizes[0] * s2[0] * q0 + c2[0]
    back = np.full(n_layers, np.nan)
    for u in range(1, n_layers):
        phi, dphi = _phi(net.hidden[u - 1], net.hidden_parameters[u - 1])
        v[u] = net.sizes[u] * s2[u] * _mean_square(phi, v[u - 1]) + c2[u]
        back[u - 1] = np.sqrt(net.sizes[u] * s2[u] * _mean_square(dphi, v[u - 1]))
    gain = v / np.r_[q0, v[:-1]]
    return v, gain, back


def _flag(kind, value, reference, limits):
    if not (np.isfinite(value) and np.isfinite(reference)) or (value > 0 and reference == 0):
        return [f"{kind} exploded"]
    if value == 0:
        return [f"{kind} vanished"]
    ratio = value / reference
    if ratio < limits[0]:
        return [f"{kind} vanished"]
    return [f"{kind} exploded"] if ratio > limits[1] else []


def _flags(var_z, grad_z, limits):
    return [
        _flag("forward", v, var_z[0], limits) + _flag("backward", g**2, grad_z[-1] ** 2, limits)
        for v, g in zip(var_z, grad_z, strict=True)
    ]


def _measure(net, label, params, X, Y, limits):
    work, _ = net.workspace(params, X, Y)
    n_layers = len(net.sizes) - 1
    with np.errstate(all="ignore"):
        d_z, d_a = backward_signals(work)
        grad = net.packing.unpack(work.gradient(), prefix="d")
        var_z = np.array([np.var(work.block(work.pre, u)) for u in range(1, n_layers + 1)])
        q0 = float(np.mean(work.inputs**2))
        theory_var, gain, back = _theory(net, params, q0)
        grad_z = np.array([np.linalg.norm(d) for d in d_z])
        theory_grad = grad_z[-1] * np.r_[np.cumprod(back[:-1][::-1])[::-1], 1.0]
        return LayerSignals(
            label=label,
            var_z=var_z,
            var_a=np.array([np.var(work.block(work.acts, u)) for u in range(1, n_layers)]),
            grad_z=grad_z,
            grad_a=np.array([np.linalg.norm(d) for d in d_a]),
            grad_w=np.array([np.linalg.norm(grad[f"dW{u}"]) for u in range(1, n_layers + 1)]),
            theory_var_z=theory_var,
            theory_gain=gain,
            theory_grad_z=theory_grad,
            theory_grad_gain=back,
            input_var=float(np.var(work.inputs)),
            flags=_flags(var_z, grad_z, limits),
        )


def _initializers(init):
    """Return ``[(label, name, options)]`` from a name, a (name, options) pair or a list."""
    if isinstance(init, str) or (
        isinstance(init, tuple) and len(init) == 2 and isinstance(init[1], dict)
    ):
        init = [init]
    wanted = "init must be an initializer name, a (name, options) pair or a list of them"
    if not isinstance(init, (list, tuple)):
        raise TypeError(f"{wanted}; got {init!r}")
    out = []
    for item in init:
        if not isinstance(item, str) and not (
            isinstance(item, (list, tuple))
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], dict)
        ):
            raise TypeError(f"{wanted}; got {item!r} in init")
        name, options = (item, {}) if isinstance(item, str) else item
        initializers.get(name)
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
        out.append((f"{name}({shown})" if shown else name, name, dict(options)))
    labels = [label for label, _, _ in out]
    if not out or len(set(labels)) != len(labels):
        raise ValueError(f"init needs one or more distinct initializers; got {labels}")
    return out


def diagnose(
    sizes,
    hidden="relu",
    init="he_normal",
    *,
    output="softmax",
    loss=None,
    batch=256,
    seed=0,
    X=None,
    Y=None,
    limits=DEFAULT_LIMITS,
):
    """Measure per-layer forward and backward signals at initialization, beside theory.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first.
    hidden : str, (str, float) or sequence of them, default "relu"
        Hidden activations, as for :class:`~fastgrad.MLP` (e.g. ``("leaky_relu", 0.2)``).
    init : str, (str, dict) or list of them, default "he_normal"
        Initializers to compare, by name, optionally with options:
        ``["he_normal", ("normal", {"std": 0.01})]``. Each draws the weights
        with ``net.init(name, seed=seed, **options)``; biases are zero.
    output, loss : str, optional
        Output and loss, as for :class:`~fastgrad.MLP`.
    batch : int, default 256
        Size of the random batch (ignored when ``X`` is given).
    seed : int, default 0
        Seed of the weights and of the batch (see :func:`random_batch`).
    X, Y : array_like, optional
        A batch of your own (samples in rows) instead of the random one;
        random targets when only ``X`` is given.
    limits : (float, float), default (1e-3, 1e3)
        Ratios to the starting layer, in variance units, outside which a layer
        is flagged (see the module documentation).

    Returns
    -------
    DiagnosisResult

    Raises
    ------
    TypeError
        ``batch`` or ``seed`` not an integer.
    ValueError
        An unknown activation or initializer, ``batch < 1``, a ``batch`` too
        large for a random batch of that size in memory, a negative ``seed``,
        or ``limits`` not ``0 < low < 1 < high``.

    Examples
    --------
    >>> import fastgrad as fg
    >>> result = fg.diagnose([64, 64, 64, 64, 10], "relu", ["he_normal", ("normal", {"std": 0.01})])
    >>> result.runs["he_normal"].flagged
    []
    >>> result.runs["normal(std=0.01)"].flags
    [['backward vanished'], ['backward vanished'], ['forward vanished'], ['forward vanished']]
    """
    net = MLP(sizes, hidden=hidden, output=output, loss=loss)
    for name, value, least in (("batch", batch, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer; got {value!r}")
        if value < least:
            raise ValueError(f"{name} must be an integer >= {least}; got {value!r}")
    batch, seed = int(batch), int(seed)  # plain ints: the result goes to JSON
    low, high = (float(x) for x in limits)
    if not 0 < low < 1 < high:
        raise ValueError(f"limits must satisfy 0 < low < 1 < high; got {limits!r}")
    if X is None:
        try:
            X, Y = random_batch(net, batch, seed)
        except (ValueError, MemoryError) as exc:  # numpy's largest dimension, or no room
            raise ValueError(f"batch = {batch} is too large for a random batch: {exc}") from None
    elif Y is None:
        Y = random_batch(net, np.shape(X)[0], seed)[1]
    runs = {}
    for label, name, options in _initializers(init):
        params = net.init(name, seed=seed, **options)
        runs[label] = _measure(net, label, params, X, Y, (low, high))
    return DiagnosisResult(
        net=net, batch=int(np.shape(X)[0]), seed=seed, limits=(low, high), runs=runs
    )


@dataclass
class DiagnosisResult:
    """The outcome of :func:`diagnose`.

    Attributes
    ----------
    net : MLP
        The network.
    batch, seed : int
        Size and seed of the batch.
    limits : (float, float)
        Flag limits.
    runs : dict
        ``{label: LayerSignals}``, one per initializer, in the order given.
    """

    net: MLP
    batch: int
    seed: int
    limits: tuple
    runs: dict

    def to_dict(self):
        """Return a JSON-ready dict."""
        net = self.net
        return {
            "network": {
                "sizes": list(net.sizes),
                "hidden": net.hidden_entries,
                "output": net.output,
                "loss": net.loss_name,
            },
            "batch": self.batch,
            "seed": self.seed,
            "limits": list(self.limits),
            "runs": [run.to_dict() for run in self.runs.values()],
        }

    def plot(self, path=None):
        """Plot ``Var(Z_l)``, ``||dJ/dZ_l||`` and ``||dW_l||`` per layer on log scales.

        Needs matplotlib (``pip install 'fastgrad[plot]'``), imported only here.

        Parameters
        ----------
        path : str or path-like, optional
            Where to save the figure (PNG, SVG, PDF, by extension), drawn with
            the Agg backend. When omitted, a pyplot figure is returned to show.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ._plot import plot_diagnosis

        return plot_diagnosis(self, path)

    def __str__(self):
        from ._plot import format_diagnosis

        return format_diagnosis(self)

    def _repr_html_(self):
        from ._html import diagnosis_html

        return diagnosis_html(self)
