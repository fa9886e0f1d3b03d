"""The centered-difference kernel of a dense network, one lane of tasks per thread.

For every requested parameter ``theta_i`` it computes, sample by sample,
``loss_b(theta + eps e_i) - loss_b(theta - eps e_i)`` exactly (to rounding),
and sums over the batch. It never runs a full forward pass per parameter:
the unperturbed pass is computed once, and perturbing ``W_u[i, j]`` moves
one pre-activation, ``Z_u[b, i]``, by ``g = eps A_{u-1}[b, j]`` (a bias: by
``eps``). For each (unit, sample) :func:`_task` picks one of three
paths (docs/algorithm.md):

1. the series path (:mod:`fastgrad.kernels.unit_series`): the loss change
   as a power series in ``g``, certified free of kinks and truncation;
2. the line path (:mod:`fastgrad.kernels.line`): through piecewise-linear
   layers the logits move along a line, the loss along it is a series;
3. the direct path (:mod:`fastgrad.kernels.propagate`): every evaluation
   carried exactly through the remaining layers as differences.

``method=DIRECT`` takes path 3 for everything. Kinks are found on paths 2
and 3 (path 1 is used only where none can be reached). Work is split into
tasks, one per (layer, unit) with its list of requested inputs; each task
writes only its own entries of the outputs and sums over the batch in
sample order, so results do not depend on the thread count.
"""

from ._jit import jit
from .activations import difference, is_kinked, is_piecewise_linear
from .dense import node_block
from .layer_series import READY, REFUSED
from .line import line_path
from .propagate import direct_path
from .structures import Carry, Jets, Line, Steps
from .unit_series import series_path, unit_series

EXACT = 0
"""Method code: the fastest exact path for each (unit, sample)."""

DIRECT = 1
"""Method code: every evaluation carried layer by layer (path 3 only)."""

SERIES, LINE, DIRECT_PATH = 0, 1, 2
"""Columns of :attr:`Results.paths <fastgrad.kernels.structures.Results>`."""


@jit(entry=False, refcount=False)
def _steps(u, i, b, e0, e1, entry_input, epsilon, net, steps):
    """Fill ``steps`` with the activation change of unit ``(u, i)`` for each entry.

    Returns whether any entry moves the unit at all (a dropped unit, a
    zero input or a unit dead at both signs does not).
    """
    sizes = net.sizes
    n_in = sizes[u - 1]
    hidden = u < sizes.shape[0] - 1
    code = net.codes[u]
    param = net.act_params[u]
    kinked = hidden and is_kinked(code, param)
    # flat indices, not views: see unit_series
    a_row = net.node_off[u - 1] + b * n_in
    node = net.node_off[u] + b * sizes[u] + i
    z = net.pre[node]
    m = net.masks[node] if hidden else 1.0
    side = z > 0.0
    moved = False
    for e in range(e0, e1):
        j = entry_input[e]
        g = epsilon if j == n_in else epsilon * net.acts[a_row + j]
        x = e - e0
        if hidden:
            sp = m * difference(code, param, z, g)
            sm = m * difference(code, param, z, -g)
        else:
            sp = g
            sm = -g
        steps.plus[x] = sp
        steps.minus[x] = sm
        steps.kink_plus[x] = kinked and ((z + g > 0.0) != side)
        steps.kink_minus[x] = kinked and ((z - g > 0.0) != side)
        moved = moved or sp != 0.0 or sm != 0.0
    return moved


@jit(inline=True)
def _task(task, tasks, net, head, tables, loss_code, method, epsilon, scratch, out):
    """Fill the entries of ``task``: each sample's differences, by the path that fits."""
    jets, series, steps, line, carry = scratch
    u = tasks.layer[task]
    i = tasks.unit[task]
    e0 = tasks.entry_ptr[task]
    e1 = tasks.entry_ptr[task + 1]
    for e in range(e0, e1):
        out.diff[e] = 0.0
        out.kinks[e] = 0
        out.kink_width[e] = 0.0
        out.unverifiable[e] = False
    hidden = u < net.sizes.shape[0] - 1
    mask = node_block(net.masks, net.node_off, net.sizes, u)
    a_in = node_block(net.acts, net.node_off, net.sizes, u - 1)
    nonzero_ptr = tables.nonzero_ptr[u - 1]
    nonzero = tables.nonzero_index
    on_line = method == EXACT and _on_line(u, net.codes)
    reach_in = tables.reach_in[u - 1]
    wt = tables.wt
    entry_input = tasks.entry_input
    diff = out.diff
    batch = head.targets.shape[0]
    n_series = 0
    n_lines = 0
    n_direct = 0
    for b in range(batch):
        if hidden and mask[b, i] == 0.0:
            continue  # a dropped unit: the loss does not move
        node = net.node_off[u] + b * net.sizes[u] + i
        state = tables.series_ready[node]
        if state == READY:
            # the unit's series, computed for its whole layer (kernels/layer_series.py)
            n_series += series_path(
                b,
                e0,
                e1,
                entry_input,
                epsilon,
                tables.series[node],
                a_in,
                nonzero_ptr,
                nonzero,
                diff,
            )
            continue
        r = epsilon * reach_in[b]
        if (
            method == EXACT
            and state != REFUSED
            and unit_series(u, i, b, r, net, head, wt, loss_code, jets, series)
        ):
            n_series += series_path(
                b, e0, e1, entry_input, epsilon, series, a_in, nonzero_ptr, nonzero, diff
            )
            continue
        if not _steps(u, i, b, e0, e1, entry_input, epsilon, net, steps):
            continue
        n_pending = 0
        if on_line:
            n_pending, n_line = line_path(
                u, i, b, e0, e1, steps, net, head, tables, loss_code, line, out
            )
            n_lines += n_line
        else:
            for e in range(e0, e1):
                x = e - e0
                if steps.plus[x] != 0.0 or steps.minus[x] != 0.0:
                    steps.pending[n_pending] = e
                    n_pending += 1
        if n_pending > 0:
            direct_path(u, i, b, e0, n_pending, steps, net, head, tables, loss_code, carry, out)
            n_direct += n_pending
    out.paths[task, SERIES] = n_series
    out.paths[task, LINE] = n_lines
    out.paths[task, DIRECT_PATH] = n_direct


@jit(entry=False)
def _on_line(u, codes):
    """Whether every hidden layer after node layer ``u`` is piecewise linear."""
    for k in range(u + 1, codes.shape[0] - 1):
        if not is_piecewise_linear(codes[k]):
            return False
    return True


@jit()
def centered_differences(
    lane,
    lanes,
    tasks,
    t_start,
    t_stop,
    net,
    head,
    tables,
    loss_code,
    method,
    epsilon,
    lanes_scratch,
    out,
):
    """Sum over the batch of per-sample centered differences, for one lane of tasks.

    The lane runs tasks ``t_start + lane``, ``t_start + lane + lanes``, ...
    up to ``t_stop``, in its own block of ``lanes_scratch``. The caller runs the
    lanes ``0 .. lanes - 1`` on as many threads (:func:`fastgrad._lanes.run_lanes`;
    the function releases the GIL): one compiled function serves any number
    of threads, so the results are the same for any of them.

    Parameters
    ----------
    lane, lanes : int
        This lane, and how many lanes the tasks are dealt to round-robin.
    tasks : Tasks
        The entries to difference, grouped by (layer, unit).
    t_start, t_stop : int
        The tasks to run (this lane's share of them).
    net : Network
        The network after its forward pass.
    head : Head
        Output probabilities, targets and Bernoulli cumulants.
    tables : Tables
        Transposed weights and input tables.
    loss_code : int
        Loss code.
    method : int
        :data:`EXACT` or :data:`DIRECT`.
    epsilon : float
        Step.
    lanes_scratch : LaneScratch
        Zeroed scratch of at least ``lane + 1`` lanes, for layers as wide as
        the network's (:func:`~fastgrad.kernels.structures.lane_scratch`); the
        kernel allocates nothing.
    out : Results
        Output, written for the entries (and tasks) of this lane's tasks only.
    """
    # this lane's views of its block, as _task takes them
    jl = lanes_scratch.jet_layers[lane]
    jv = lanes_scratch.jet_vectors[lane]
    sv = lanes_scratch.step_values[lane]
    sf = lanes_scratch.step_flags[lane]
    lv = lanes_scratch.line_vectors[lane]
    ls = lanes_scratch.line_series[lane]
    cl = lanes_scratch.carry_layers[lane]
    cv = lanes_scratch.carry_values[lane]
    scratch = (
        Jets(jl[0], jl[1], jv[0], jv[1], jv[2], jv[3], jv[4], jv[5], jv[6]),
        jv[7],
        Steps(sv[0], sv[1], sf[0], sf[1], lanes_scratch.step_pending[lane]),
        Line(lv[0], lv[1], lv[2], ls[0], ls[1], ls[2]),
        Carry(cl[0], cl[1], cv[0], cv[1], lanes_scratch.carry_crossed[lane]),
    )
    for task in range(t_start + lane, t_stop, lanes):
        _task(task, tasks, net, head, tables, loss_code, method, epsilon, scratch, out)
