"""Centered differences of a user's compiled scalar function, in parallel."""

import numba

from ._jit import jit


@jit(parallel=True, cache=False)
def centered_differences_of(f, theta, shape, epsilon, lanes, out):
    """Write ``f(theta + eps e_i) - f(theta - eps e_i)`` into ``out[i]``.

    ``theta`` is flat; ``f`` receives it reshaped to ``shape``. Each of
    ``lanes`` parallel lanes perturbs its own copy of ``theta``, one entry at a
    time, and restores it, so lanes never share a write.
    """
    n = theta.shape[0]
    for lane in numba.prange(lanes):
        local = theta.copy()
        view = local.reshape(shape)
        for i in range(lane, n, lanes):
            keep = local[i]
            local[i] = keep + epsilon
            plus = f(view)
            local[i] = keep - epsilon
            minus = f(view)
            local[i] = keep
            out[i] = plus - minus
