"""The line path's direction and radius, against full passes through piecewise-linear layers."""

import naive
import numpy as np
import pytest
from networks import case, naive_args

from fastgrad.kernels.line import line_direction
from fastgrad.kernels.structures import Line
from fastgrad.numerical import Differences


def logits_after(net, params, X, u, i, b, s):
    """Logits of sample ``b`` when ``A_u[b, i]`` moves by ``s``, in extended precision."""
    sizes, hidden, _, _, masks = naive_args(net, X)
    ld = np.longdouble
    _, A = naive.forward(sizes, hidden, params, X, masks)
    a = A[u][b].astype(ld)
    a[i] += ld(s)
    for layer in range(u + 1, len(sizes)):
        z = params[f"W{layer}"].astype(ld) @ a + np.ravel(params[f"b{layer}"]).astype(ld)
        if layer < len(sizes) - 1:
            a = naive.activation(hidden[layer - 1], z) * masks[layer - 1][b]
    return z


@pytest.mark.parametrize("hidden", [["relu", "leaky_relu"], ["identity", "relu"]])
def test_line_direction_and_radius(hidden):
    net, params, X, Y = case([4, 6, 5, 3], hidden, "softmax", batch=3, seed=4, dropout=0.25)
    work, _ = net.workspace(params, X, Y)
    diff = Differences(work, 1e-6)
    diff.prepare()
    width = int(work.sizes.max())
    line = Line(*(np.zeros(width) for _ in range(3)), *(np.zeros(10) for _ in range(3)))
    for b in range(3):  # a logit moves along its own axis, with nothing to cross
        assert line_direction(3, 1, b, work.network, diff.tables.wt, line) == np.inf
        np.testing.assert_array_equal(line.direction[:3], [0.0, 1.0, 0.0])
    for u, i in ((1, 2), (2, 4)):
        for b in range(3):
            radius = line_direction(u, i, b, work.network, diff.tables.wt, line)
            v = line.direction[:3].copy()
            base = logits_after(net, params, X, u, i, b, 0.0)
            s = min(radius * 0.5, 1.0)
            moved = (logits_after(net, params, X, u, i, b, s) - base) / s
            np.testing.assert_allclose(moved.astype(float), v, rtol=1e-12, atol=1e-14)
            if np.isfinite(radius):
                # just past the radius, on one side, a unit changes side: the logits leave the line
                left = []
                for s in (radius * 1.5, -radius * 1.5):
                    beyond = (logits_after(net, params, X, u, i, b, s) - base) / s
                    left.append(not np.allclose(beyond.astype(float), v, rtol=1e-9, atol=0))
                assert any(left), (u, i, b, radius)
            else:  # nothing kinked after the unit
                assert all(name == "identity" for name in hidden[u:])
