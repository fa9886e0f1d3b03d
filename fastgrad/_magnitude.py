"""How precisely a gradient can be known at a point: the floor of the comparison.

An entry of the gradient is a sum of per-sample terms (products of
activations, weights, activation derivatives and the loss's residual).
Rounding errs in proportion to the size of those terms, not of their sum, so
where they cancel (an exact fit, a saturated softmax, an optimum) the exact
gradient is at rounding level and relative error reads noise as failure.
:func:`gradient_magnitude` returns, for every entry, the sum of the absolute
values of its terms: the gradient a backward pass would give if nothing
cancelled, with the residual ``y_hat - y`` replaced by ``|y_hat| + |y|``.
:func:`comparison_floor` turns its largest value into the floor of the entry
errors (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3: a
sum's rounding error is bounded by ``n u`` times the sum of its absolute
terms).
"""

import functools

import numpy as np

from .kernels._jit import direct
from .kernels.activations import (
    ELU,
    IDENTITY,
    LEAKY_RELU,
    PIECEWISE_LINEAR,
    RELU,
    SIGMOID,
    SOFTPLUS,
    TANH,
)
from .kernels.terms import layer_bound, network_scale, times_slope
from .thresholds import ROUNDING

ROUNDING_GROWTH = 1e3
"""How many unit roundoffs of the terms' size a correct gradient may be off by.

A backward pass or a carried difference sums over the batch and the widths of
the layers; the worst-case bound ``n u`` grows with them, the usual error
(``sqrt(n) u``) much more slowly. 1e3 covers batches and widths in the
thousands with room to spare.
"""


_network_scale = direct(network_scale)


def _derivative(code, param, z):
    """Return ``|phi'(z)|`` of an activation with its parameter, elementwise (numpy)."""
    if code == IDENTITY:
        return np.ones_like(z)
    if code == RELU:
        return (z >= 0).astype(np.float64)
    if code == LEAKY_RELU:
        return np.where(z > 0, 1.0, abs(param))
    # no cancellation as a unit saturates (1 - tanh^2 keeps none of its digits there), so
    # that the compiled scale's slopes (kernels.terms._slope, the same forms) agree with
    # these to a few ulps; every exponent is at most 0
    if code == TANH:
        e = np.exp(-2.0 * np.abs(z))
        return 4.0 * e / ((1.0 + e) * (1.0 + e))
    if code == SIGMOID:
        e = np.exp(-np.abs(z))
        return e / ((1.0 + e) * (1.0 + e))
    if code == SOFTPLUS:
        e = np.exp(-np.abs(param * z))
        return np.where(param * z >= 0.0, 1.0, e) / (1.0 + e)
    if code == ELU:
        return np.where(z > 0, 1.0, abs(param) * np.exp(np.minimum(z, 0.0)))
    raise ValueError(f"unknown activation code {code!r}")


def _backward_terms(work):
    """Yield ``(u, delta, weight)`` from the last layer down: ``|terms|`` reaching layer ``u``.

    ``delta`` is ``(batch, sizes[u])``: per sample, the sum of absolute terms
    of the loss's derivative by the pre-activations of layer ``u``.
    """
    targets = np.abs(work.targets)
    if work.net.output == "softmax":  # p sum(y) - y: soft targets need not sum to 1
        delta = work.probabilities() * np.add.reduce(targets, axis=1, keepdims=True) + targets
    else:
        delta = np.abs(work.probabilities()) + targets
    if work.scale != 1.0:
        delta *= abs(work.scale)  # the network's convention for the data term (sum, mean)
    # plain ints: a small network's arrays take less time than numpy's scalars slicing them
    sizes, w_off = work.sizes.tolist(), work.w_off.tolist()
    codes, act_params = work.codes.tolist(), work.act_params.tolist()
    blocks = work.blocks
    theta = work.theta
    for u in range(len(sizes) - 1, 0, -1):
        n_out, n_in = sizes[u], sizes[u - 1]
        weight = theta[w_off[u] : w_off[u] + n_out * n_in].reshape(n_out, n_in)
        yield u, delta, weight
        if u > 1:
            code = codes[u - 1]
            pre, masks = blocks.pre[u - 1], blocks.masks[u - 1]
            delta = np.einsum("bk,kj->bj", delta, np.abs(weight))
            if code in PIECEWISE_LINEAR:  # one compiled pass, in place
                times_slope(code, act_params[u - 1], pre, masks, delta)
            else:
                spread = _derivative(code, act_params[u - 1], pre)
                spread *= np.abs(masks)
                delta *= spread


def gradient_magnitude(work):
    """Return each gradient entry's sum of absolute per-sample terms, flat like ``theta``.

    Parameters
    ----------
    work : Workspace
        The network, parameters and batch after the forward pass.

    Returns
    -------
    ndarray
        ``(n_params,)``, nonnegative, in gradient units: ``(1/m) sum_b
        |delta_b| |a_b|`` with every weight, derivative and the output residual
        taken in absolute value, plus ``(l2/m) |W|``. It bounds ``|grad|``
        and sets the scale of its rounding error.

    Notes
    -----
    Products go through ``numpy.einsum``'s own loops, not BLAS, so that no
    BLAS threads start beside numba's (on a loaded two-core machine a BLAS
    matmul of the first layer took 45 ms, einsum 9 ms).
    """
    packing = work.net.packing
    batch = work.batch
    out = np.empty(packing.size)
    for u, delta, weight in _backward_terms(work):
        a_in = np.abs(work.blocks.acts[u - 1])
        w_part = packing.slice(f"W{u}")
        out[w_part] = np.einsum("bk,bj->kj", delta, a_in).ravel() / batch
        if work.l2:
            out[w_part] += work.l2 / batch * np.abs(weight).ravel()
        out[packing.slice(f"b{u}")] = delta.sum(axis=0) / batch
    return out


SMOOTH_TERMS = 2048
"""Smooth units' derivatives (batch x hidden units) up to which the scale runs compiled.

A piecewise-linear network's scale always runs in one compiled call
(:func:`~fastgrad.kernels.terms.network_scale`), faster than numpy at every
size (a warm course network 12 to 5 us, mnist 276 to 200 us, 2048-wide 55 to
43 ms). A smooth unit's derivative costs the compiled loop a scalar ``tanh``
or ``exp`` (about 20 ns), numpy's vectorized ones about 3 ns: past this
many, numpy's layer-by-layer walk, about 10 us of calls per layer, costs less
(measured even at about 3000: a 256-64-32-10 tanh network at batch 32).
"""


@functools.lru_cache(maxsize=64)
def _smooth_units(codes, sizes):
    """Return the hidden units whose activation is not piecewise linear."""
    return sum(
        n for n, code in zip(sizes[1:-1], codes[1:-1], strict=True) if code not in PIECEWISE_LINEAR
    )


def gradient_scale(work):
    """Return an upper bound of ``gradient_magnitude(work).max()``, at a fraction of its cost.

    A weight entry's terms ``sum_b delta_bk |a_bj|`` are bounded by ``sum_b
    delta_bk max_j |a_bj|``, which skips the weight-sized products (the first
    layer's is most of the cost); the bound exceeds the largest entry by the
    spread of ``|a_bj|`` over ``j``, a small factor for the floor. Every
    layer runs in one compiled call
    (:func:`~fastgrad.kernels.terms.network_scale`), its products as plain
    loops in a fixed order (the same for any thread count), unless the
    network has more than :data:`SMOOTH_TERMS` smooth units' derivatives to
    take: then layer by layer, the terms carried by :func:`_backward_terms`
    and summed over the batch by :func:`~fastgrad.kernels.terms.layer_bound`.
    Either gives the sums of :func:`gradient_magnitude`'s terms to a few
    units in the last place.
    """
    net = work.net
    if work.batch * _smooth_units(net.activation_codes, net.sizes) > SMOOTH_TERMS:
        return _scale_by_layer(work)
    inputs = work.inputs
    if not inputs.flags.writeable:  # the caller's own, read-only: one type for the kernel
        inputs = inputs.copy()
    return _network_scale(
        work.network,
        inputs,
        work.probabilities(),
        work.targets,
        work.loss_code,
        float(work.scale),
        work.l2,
    )


def _scale_by_layer(work):
    """:func:`gradient_scale` with numpy's products and derivatives, one layer at a time."""
    batch = work.batch
    scale = 0.0
    reach = np.empty(batch)
    for u, delta, weight in _backward_terms(work):
        a_in = work.inputs if u == 1 else work.blocks.acts[u - 1]
        largest, bias = layer_bound(a_in, delta, reach)
        if work.l2 and weight.size:
            largest += work.l2 * float(np.maximum.reduce(np.abs(weight), axis=None))
        scale = max(scale, largest / batch, bias / batch)
    return scale


FLOOR_RATIO = ROUNDING_GROWTH * ROUNDING / 1e-4
"""Floor of the entry errors' denominator per unit of the gradient's scale (2.2e-9).

A correct entry may be off by ``ROUNDING_GROWTH u scale``; dividing by the
default ACCEPTABLE level (1e-4) makes rounding alone read at most ACCEPTABLE,
while an entry ``1e-5`` of ``scale`` with a factor-2 mistake still reads WRONG
(its error is 1/3). It does not follow user thresholds: stricter levels
are a request to see more, not to excuse more.
"""


def comparison_floor(scale):
    """Return the floor of the entry errors' denominator for a gradient of size ``scale``.

    Parameters
    ----------
    scale : float
        :func:`gradient_scale` (or, without it, the largest numerical
        entry), in gradient units.

    Returns
    -------
    float
        ``FLOOR_RATIO * scale``: entry errors are ``|a - n| / max(|a| + |n|,
        floor)``.
    """
    return FLOOR_RATIO * float(scale)


def vanishes(largest, scale):
    """Whether a gradient whose largest ``|a| + |n|`` is ``largest`` is rounding noise.

    True when ``largest`` is within :data:`ROUNDING_GROWTH` unit roundoffs of
    the terms' size ``scale``: the exact gradient is then indistinguishable
    from zero and no comparison can establish anything.
    """
    return largest <= ROUNDING_GROWTH * ROUNDING * scale
