"""The one-unit series path, called directly: the reference the layer-wide setups are held to."""

import numpy as np

from fastgrad.kernels.jets import ORDER
from fastgrad.kernels.structures import jet_scratch
from fastgrad.kernels.unit_series import unit_series


def one_unit_series(work, diff, u, i, b, epsilon):
    """The one-unit path's series of (u, i, b), or None where it refuses."""
    width = int(work.sizes.max())
    scratch = jet_scratch(width)
    out = np.zeros(ORDER + 1)
    r = epsilon * diff.tables.reach_in[u - 1, b]
    net, t = work.network, diff.tables
    if unit_series(u, i, b, r, net, diff.head, t.wt, work.loss_code, scratch, out):
        return out
    return None
