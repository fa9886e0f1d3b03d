"""The direct path: changes of pre-activations carried exactly through the rest of the network.

Given how much the pre-activations of one node layer move for a sample, in
several columns at once (one column per evaluation ``theta +- eps e_i``),
this computes how much the sample's loss moves in each, layer by layer, as
differences from the unperturbed pass: ``dA = M (phi(Z + dZ) - phi(Z))`` by
the cancellation-free :func:`~fastgrad.kernels.activations.difference`,
``dZ_next = W dA``, and at the logits the loss change from ``expm1`` and
``log1p`` (:func:`~fastgrad.kernels.losses.loss_difference`). Along the way
it counts the kinked units (relu; leaky relu and elu unless their parameter
is 1) whose pre-activation changed side (kink crossings). No derivative
formula and no series is involved.
"""

from ._jit import jit
from .activations import difference, is_kinked
from .losses import loss_difference

COLUMNS = 32
"""Evaluations carried together (16 entries, both signs): one pass over each weight serves them."""


@jit(entry=False, refcount=False)
def carry_to_loss(k0, b, n_cols, net, head, loss_code, carry):
    """Carry ``carry.dz_a[c, :sizes[k0]]``, the change of ``Z_k0[b]`` in column ``c``, to the loss.

    Parameters
    ----------
    k0 : int
        Node layer whose pre-activations ``carry.dz_a`` holds changes of.
    b : int
        Sample.
    n_cols : int
        Columns of ``carry.dz_a`` in use.
    net : Network
        The network after its forward pass.
    head : Head
        Output probabilities and targets.
    loss_code : int
        Loss code.
    carry : Carry
        Scratch; ``dz_a`` holds the input and is overwritten. Output:
        ``f_out[c]``, the loss change of column ``c``, and ``crossed[c]``,
        how many kinked units changed side in it.
    """
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    pre = net.pre
    masks = net.masks
    theta = net.theta
    dz_a = carry.dz_a
    dz_b = carry.dz_b
    for c in range(n_cols):
        carry.crossed[c] = 0
    for k in range(k0, n_layers):
        n_in = sizes[k]
        row = net.node_off[k] + b * n_in
        code = net.codes[k]
        param = net.act_params[k]
        kinked = is_kinked(code, param)
        n_next = sizes[k + 1]
        w_start = net.w_off[k + 1]
        # a 2-d view, not flat indexing: the products are summed as before, bit for bit
        weight = theta[w_start : w_start + n_next * n_in].reshape((n_next, n_in))
        for c in range(n_cols):
            for q in range(n_in):
                d = dz_a[c, q]
                m = masks[row + q]
                if m == 0.0 or d == 0.0:
                    dz_a[c, q] = 0.0
                    continue
                z = pre[row + q]
                if kinked and ((z + d > 0.0) != (z > 0.0)):
                    carry.crossed[c] += 1
                dz_a[c, q] = m * difference(code, param, z, d)
            for p in range(n_next):
                total = 0.0
                for q in range(n_in):
                    total += weight[p, q] * dz_a[c, q]
                dz_b[c, p] = total
        dz_a, dz_b = dz_b, dz_a
    n_out = sizes[n_layers]
    start = net.node_off[n_layers] + b * n_out
    logits = pre[start : start + n_out]
    for c in range(n_cols):
        carry.f_out[c] = loss_difference(
            loss_code, logits, head.prob[b], head.targets[b], dz_a[c, :n_out]
        )


@jit(entry=False, refcount=False)
def carry_unit_change(u, i, b, n_cols, net, head, wt, loss_code, carry):
    """Carry activation changes ``carry.steps`` of unit ``(u, i)`` to the loss of sample ``b``.

    ``u == L`` means the logit ``i`` itself moves by ``carry.steps``. ``wt``
    holds the transposed weights (:class:`~fastgrad.kernels.structures.Tables`).
    Fills ``carry.f_out`` and ``carry.crossed`` as :func:`carry_to_loss` does.
    """
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    if u == n_layers:
        for c in range(n_cols):
            carry.dz_a[c, : sizes[n_layers]] = 0.0
            carry.dz_a[c, i] = carry.steps[c]
    else:
        n = sizes[u + 1]
        start = net.w_off[u + 1] + i * n
        for c in range(n_cols):
            for q in range(n):
                carry.dz_a[c, q] = carry.steps[c] * wt[start + q]
    carry_to_loss(min(u + 1, n_layers), b, n_cols, net, head, loss_code, carry)


@jit(entry=False, refcount=False)
def direct_path(u, i, b, e0, n_pending, steps, net, head, tables, loss_code, carry, out):
    """Path 3: add the exact loss changes of the pending entries of unit ``(u, i)``, sample ``b``.

    ``steps.pending[:n_pending]`` lists the entries; ``steps.plus[e - e0]``
    and ``steps.minus[e - e0]`` are how the unit's activation moves at
    ``+eps`` and ``-eps`` and ``steps.kink_plus``/``kink_minus`` whether
    that move crosses the unit's own kink. Adds ``f+ - f-`` to
    ``out.diff[e]``; for a sample that crosses a kink also the evaluations
    that crossed to ``out.kinks[e]`` and ``|f+ + f-|`` to
    ``out.kink_width[e]``, and sets ``out.unverifiable[e]`` when the sample
    meets more than one kink in its two evaluations.
    """
    half = COLUMNS // 2
    for first in range(0, n_pending, half):
        last = min(n_pending, first + half)
        for f in range(first, last):
            x = steps.pending[f] - e0
            carry.steps[2 * (f - first)] = steps.plus[x]
            carry.steps[2 * (f - first) + 1] = steps.minus[x]
        carry_unit_change(u, i, b, 2 * (last - first), net, head, tables.wt, loss_code, carry)
        for f in range(first, last):
            e = steps.pending[f]
            x = e - e0
            c = 2 * (f - first)
            f_plus = carry.f_out[c]
            f_minus = carry.f_out[c + 1]
            out.diff[e] += f_plus - f_minus
            met_plus = steps.kink_plus[x] + carry.crossed[c]
            met_minus = steps.kink_minus[x] + carry.crossed[c + 1]
            if met_plus + met_minus > 0:
                out.kinks[e] += (met_plus > 0) + (met_minus > 0)
                out.kink_width[e] += abs(f_plus + f_minus)
                if met_plus + met_minus > 1:
                    out.unverifiable[e] = True
