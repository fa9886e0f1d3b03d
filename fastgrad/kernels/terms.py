"""Elementwise steps of the gradient's magnitude (:mod:`fastgrad._magnitude`) on small blocks.

The sums of the magnitude itself stay numpy's (``numpy.einsum``,
``numpy.add.reduce``), so that it keeps their rounding; what these kernels do
is exact in any order (absolute values, maxima, the slope of a
piecewise-linear unit times its dropout multiplier), in one call per layer
where numpy would take several. :func:`layer_bound` sums over the batch for
the gradient's scale, a bound taken with a margin of ``1e3`` unit roundoffs,
to which the order of its sums is a few units in the last place.
"""

import math

from ._jit import jit
from .activations import LEAKY_RELU, RELU


@jit()
def row_reach(block, out):
    """Fill ``out[b]`` with ``max(0, max_j |block[b, j]|)`` (NaN propagates, as in numpy)."""
    for b in range(block.shape[0]):
        top = 0.0
        nan = False
        for j in range(block.shape[1]):
            value = abs(block[b, j])
            if value > top:
                top = value
            nan = nan or math.isnan(value)
        out[b] = math.nan if nan else top


@jit()
def times_slope(code, param, pre, masks, out):
    """Multiply ``out`` by ``|phi'(pre)| |masks|`` in place, for a piecewise-linear ``code``.

    ``code`` is identity, relu or leaky relu (``param`` its slope for
    negative inputs); relu's slope at its kink is 1, as
    :mod:`fastgrad._magnitude` takes it. Each entry is multiplied by the
    product of the slope and the multiplier (a slope of 0 or 1 leaves it
    exact; ``|param|`` to rounding).
    """
    for b in range(pre.shape[0]):
        for k in range(pre.shape[1]):
            z = pre[b, k]
            if code == RELU:
                slope = 1.0 if z >= 0.0 else 0.0
            elif code == LEAKY_RELU:
                slope = 1.0 if z > 0.0 else abs(param)
            else:
                slope = 1.0
            out[b, k] *= slope * abs(masks[b, k])


@jit()
def layer_bound(a_in, delta, reach):
    """Return the largest bound of a layer's weight and bias entries, before the ``1/m``.

    With ``r_b = max_j |a_in[b, j]|`` (written to ``reach``, as
    :func:`row_reach` does), the largest over output units ``k`` of ``sum_b
    r_b delta[b, k]`` (a weight entry's terms are at most that) and of ``sum_b
    delta[b, k]`` (a bias entry's terms), each at least 0; either is NaN when
    one of its sums is, as ``numpy.maximum.reduce`` gives it.

    Parameters
    ----------
    a_in : ndarray
        ``(batch, n_in)``: the layer's inputs.
    delta : ndarray
        ``(batch, n_out)``: sums of absolute terms reaching the layer's units.
    reach : ndarray
        ``(batch,)``, overwritten with ``r_b``.

    Returns
    -------
    (float, float)
        The weights' and the biases' largest sums.
    """
    row_reach(a_in, reach)
    weight_top = bias_top = 0.0
    weight_nan = bias_nan = False
    for k in range(delta.shape[1]):
        column = bias = 0.0
        for b in range(delta.shape[0]):
            column += reach[b] * delta[b, k]
            bias += delta[b, k]
        if column > weight_top:
            weight_top = column
        if bias > bias_top:
            bias_top = bias
        weight_nan = weight_nan or math.isnan(column)
        bias_nan = bias_nan or math.isnan(bias)
    return (math.nan if weight_nan else weight_top), (math.nan if bias_nan else bias_top)
