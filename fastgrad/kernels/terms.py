"""Elementwise steps of the gradient's magnitude (:mod:`fastgrad._magnitude`) on small blocks.

The sums over the batch and over a layer's units stay numpy's
(``numpy.einsum``, ``numpy.add.reduce``), so that the magnitude keeps their
rounding; what these kernels do is exact in any order (absolute values,
maxima, the slope of a piecewise-linear unit times its dropout multiplier),
in one call per layer where numpy would take several.
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
def slope_spread(code, param, pre, masks, out):
    """Fill ``out`` with ``|phi'(pre)| |masks|`` for a piecewise-linear ``code``.

    ``code`` is identity, relu or leaky relu (``param`` its slope for
    negative inputs); relu's slope at its kink is 1,
    as :mod:`fastgrad._magnitude` takes it.
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
            out[b, k] = slope * abs(masks[b, k])
