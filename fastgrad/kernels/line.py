"""The line path: through piecewise-linear layers the logits move along a straight line.

When every hidden layer after the perturbed unit ``(u, i)`` is identity, relu
or leaky relu and none of their units changes side, a change ``s`` of the
unit's activation moves the logits of sample ``b`` to ``z + s v``, with
``v = W_L D_{L-1} ... D_{u+1} W_{u+1}[:, i]`` (``D`` the slopes times the
dropout masks) fixed for the unit and the sample. :func:`line_direction`
computes ``v`` and the largest ``|s|`` for which no unit changes side; the
loss along the line is a short series (:mod:`fastgrad.kernels.line_series`)
whose coefficients serve every input ``j`` of the row (:func:`line_path`).
"""

import math

from ._jit import jit
from .activations import derivative, is_kinked
from .line_series import evaluate, line_coefficients, odd_difference
from .unit_series import SAFETY


@jit(entry=False, refcount=False)
def line_direction(u, i, b, net, wt, line):
    """Write into ``line.direction`` how the logits move per unit change of ``A_u[b, i]``.

    Assumes every hidden layer after ``u`` is piecewise linear. Returns the
    largest change for which no kinked unit of those layers changes side.
    ``wt`` holds the transposed weights.
    """
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    n_out = sizes[n_layers]
    direction = line.direction
    if u == n_layers:
        for q in range(n_out):
            direction[q] = 0.0
        direction[i] = 1.0
        return math.inf
    v_a = line.v_a
    v_b = line.v_b
    n = sizes[u + 1]
    start = net.w_off[u + 1] + i * n
    # element by element: an array-to-array slice copy compiles numba's shape-mismatch
    # error message (string formatting), a second's compile for nothing
    for q in range(n):
        v_a[q] = wt[start + q]
    radius = math.inf
    for k in range(u + 1, n_layers):
        # flat indices, not views: see unit_series
        row = net.node_off[k] + b * sizes[k]
        code = net.codes[k]
        param = net.act_params[k]
        kinked = is_kinked(code, param)
        for q in range(sizes[k]):
            vq = v_a[q]
            m = net.masks[row + q]
            if m == 0.0:
                v_a[q] = 0.0
                continue
            z_q = net.pre[row + q]
            if kinked and vq != 0.0:
                radius = min(radius, abs(z_q) / abs(vq))
            v_a[q] = vq * m * derivative(code, param, z_q)
        n_in = sizes[k]
        for p in range(sizes[k + 1]):
            w_row = net.w_off[k + 1] + p * n_in
            total = 0.0
            for q in range(n_in):
                total += net.theta[w_row + q] * v_a[q]
            v_b[p] = total
        v_a, v_b = v_b, v_a
    for q in range(n_out):
        direction[q] = v_a[q]
    return radius


@jit(entry=False, refcount=False)
def line_path(u, i, b, e0, e1, steps, net, head, tables, loss_code, line, out):
    """Path 2: add the loss changes of entries ``e0:e1`` that stay on the line.

    ``steps.plus``/``steps.minus`` hold how the unit's activation moves for
    each entry. An entry whose moves stay within the radius where no later
    unit changes side and within the series' reach gets ``F(s+) - F(s-)``
    from the series along the line; a crossing of the unit's own kink adds
    its evaluations to ``out.kinks`` and ``|F(s+) + F(s-)|`` to
    ``out.kink_width``. The other moving entries are listed in
    ``steps.pending`` for the direct path.

    Returns
    -------
    (int, int)
        Entries left pending, entries computed here.
    """
    n_out = net.sizes[net.sizes.shape[0] - 1]
    radius = line_direction(u, i, b, net, tables.wt, line)
    start = net.node_off[net.sizes.shape[0] - 1] + b * n_out
    reach = line_coefficients(
        loss_code,
        net.pre[start : start + n_out],
        head.prob[b],
        head.targets[b],
        line.direction[:n_out],
        head.bernoulli[b % head.bernoulli.shape[0]],
        line.mu,
        line.kappa,
        line.coef,
    )
    limit = min(radius * SAFETY, reach)
    n_pending = 0
    n_done = 0
    for e in range(e0, e1):
        x = e - e0
        sp = steps.plus[x]
        sm = steps.minus[x]
        if sp == 0.0 and sm == 0.0:
            continue
        if not (abs(sp) < limit and abs(sm) < limit):
            steps.pending[n_pending] = e
            n_pending += 1
            continue
        n_done += 1
        crossing = steps.kink_plus[x] or steps.kink_minus[x]
        if sm == -sp and not crossing:
            out.diff[e] += odd_difference(line.coef, sp)
            continue
        f_plus = evaluate(line.coef, sp)
        f_minus = evaluate(line.coef, sm)
        out.diff[e] += f_plus - f_minus
        if crossing:
            out.kinks[e] += steps.kink_plus[x] + steps.kink_minus[x]
            out.kink_width[e] += abs(f_plus + f_minus)
    return n_pending, n_done
