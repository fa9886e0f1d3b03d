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

import numpy as np

from ._passes import SMALL_PRODUCT
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
from .kernels.terms import layer_bound, times_slope
from .thresholds import ROUNDING

ROUNDING_GROWTH = 1e3
"""How many unit roundoffs of the terms' size a correct gradient may be off by.

A backward pass or a carried difference sums over the batch and the widths of
the layers; the worst-case bound ``n u`` grows with them, the usual error
(``sqrt(n) u``) much more slowly. 1e3 covers batches and widths in the
thousands with room to spare.
"""


def _derivative(code, param, z):
    """Return ``|phi'(z)|`` of an activation with its parameter, elementwise (numpy)."""
    if code == IDENTITY:
        return np.ones_like(z)
    if code == RELU:
        return (z >= 0).astype(np.float64)
    if code == LEAKY_RELU:
        return np.where(z > 0, 1.0, abs(param))
    if code == TANH:
        return 1.0 - np.tanh(z) ** 2
    if code == SIGMOID:
        s = 0.5 * (1.0 + np.tanh(0.5 * z))
        return s * (1.0 - s)
    if code == SOFTPLUS:
        return 0.5 * (1.0 + np.tanh(0.5 * param * z))
    if code == ELU:
        return np.where(z > 0, 1.0, abs(param) * np.exp(np.minimum(z, 0.0)))
    raise ValueError(f"unknown activation code {code!r}")


def _backward_terms(work, small=False):
    """Yield ``(u, delta, weight)`` from the last layer down: ``|terms|`` reaching layer ``u``.

    ``delta`` is ``(batch, sizes[u])``: per sample, the sum of absolute terms
    of the loss's derivative by the pre-activations of layer ``u``. With
    ``small``, products go through ``numpy.matmul`` (BLAS, below its
    threading threshold), which costs less than ``einsum``'s Python wrapper
    but may round the sums differently, in the last bits.
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
            if small:
                delta = np.matmul(delta, np.abs(weight))
            else:
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


def gradient_scale(work):
    """Return an upper bound of ``gradient_magnitude(work).max()``, at a fraction of its cost.

    A weight entry's terms ``sum_b delta_bk |a_bj|`` are bounded by ``sum_b
    delta_bk max_j |a_bj|``, which skips the weight-sized products (the first
    layer's is most of the cost); the bound exceeds the largest entry by the
    spread of ``|a_bj|`` over ``j``, a small factor for the floor. The sums
    over the batch run in one compiled pass per layer
    (:func:`~fastgrad.kernels.terms.layer_bound`). A network whose products
    all stay below BLAS's threading threshold
    (:data:`~fastgrad._passes.SMALL_PRODUCT`) carries the terms down with
    ``matmul`` rather than ``einsum``: the same sums to a few units in the
    last place.
    """
    batch = work.batch
    scale = 0.0
    acts = work.blocks.acts
    reach = np.empty(batch)
    small = batch * work.net.n_params < SMALL_PRODUCT
    for u, delta, weight in _backward_terms(work, small):
        largest, bias = layer_bound(acts[u - 1], delta, reach)
        if work.l2 and weight.size:
            # the ufunc itself: np.max's wrapper costs more than a small layer's reduction
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
