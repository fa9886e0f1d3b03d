"""The numerical gradient of a network by centered differences.

:func:`numerical_gradient` is the public entry point; :class:`Differences`
is the wrapper of the kernel :func:`fastgrad.kernels.finite_diff.centered_differences`
that :func:`fastgrad.check` also uses: it turns a set of parameter entries into
the kernel's tasks, runs them in chunks (so that progress can be reported and
a long run interrupted) and scales the result.
"""

import functools

import numba
import numpy as np

from ._packing import Packing
from .kernels import finite_diff, tables
from .kernels.series import DEGREE

SERIAL_WORK = 20_000
"""Entry-samples of a whole run under which the kernel runs on the calling thread."""

DEFAULT_EPSILON = 1e-7
"""Default step, the course's; see :func:`numerical_gradient` for why it suits fastgrad."""


def check_epsilon(epsilon):
    """Return ``epsilon`` as a float if it is a finite positive number, else raise."""
    try:
        value = float(epsilon)
    except (TypeError, ValueError):
        raise TypeError(f"epsilon must be a positive number; got {epsilon!r}") from None
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"epsilon must be a finite positive number; got {epsilon!r}")
    return value


@functools.lru_cache(maxsize=8)
def full_layout(sizes):
    """Return the tasks of a full check of a network of ``sizes``.

    Entries are grouped by (layer, unit): row ``i`` of ``W_u`` then ``b_u[i]``.

    Returns
    -------
    tuple of ndarray
        ``entries`` (flat indices), ``task_layer``, ``task_unit``,
        ``entry_ptr``, ``entry_input``, ``is_weight``.
    """
    packing = Packing(sizes)
    entries, layers, units, counts = [], [], [], []
    for u in range(1, len(sizes)):
        n_out, n_in = sizes[u], sizes[u - 1]
        grid = np.empty((n_out, n_in + 1), dtype=np.int64)
        grid[:, :n_in] = packing.offsets[f"W{u}"] + np.arange(n_out * n_in).reshape(n_out, n_in)
        grid[:, n_in] = packing.offsets[f"b{u}"] + np.arange(n_out)
        entries.append(grid.ravel())
        layers.append(np.full(n_out, u, dtype=np.int64))
        units.append(np.arange(n_out, dtype=np.int64))
        counts.append(np.full(n_out, n_in + 1, dtype=np.int64))
    counts = np.concatenate(counts)
    task_layer = np.concatenate(layers)
    entry_input = np.concatenate([np.arange(c) for c in counts]).astype(np.int64)
    arrays = (
        np.concatenate(entries),
        task_layer,
        np.concatenate(units),
        np.r_[0, np.cumsum(counts)].astype(np.int64),
        entry_input,
        entry_input < np.repeat(counts - 1, counts),
    )
    for array in arrays:
        array.flags.writeable = False
    return arrays


def sampled_layout(work, entries):
    """Return the tasks of the given flat ``entries`` (see :func:`full_layout`)."""
    packing = work.net.packing
    sizes = np.asarray(work.sizes)
    entries = np.unique(np.asarray(entries, dtype=np.int64))
    if entries.size and (entries[0] < 0 or entries[-1] >= packing.size):
        raise IndexError(f"entries must lie in 0..{packing.size - 1}")
    starts = np.array([packing.offsets[name] for name in packing.names])
    tensor = np.searchsorted(starts, entries, side="right") - 1
    layer = tensor // 2 + 1
    local = entries - starts[tensor]
    n_in = sizes[layer - 1]
    bias = tensor % 2 == 1
    unit = np.where(bias, local, local // n_in)
    column = np.where(bias, n_in, local % n_in)
    order = np.lexsort((column, unit, layer))
    entries, layer, unit, column = entries[order], layer[order], unit[order], column[order]
    first = np.flatnonzero(np.r_[True, (np.diff(layer) != 0) | (np.diff(unit) != 0)])
    return (
        entries,
        np.ascontiguousarray(layer[first]),
        np.ascontiguousarray(unit[first]),
        np.r_[first, entries.size].astype(np.int64),
        np.ascontiguousarray(column),
        column < sizes[layer - 1],
    )


def split_tasks(costs, n_ranges):
    """Split tasks of estimated ``costs`` into at most ``n_ranges`` contiguous ranges of like cost.

    Returns
    -------
    list of (int, int)
        ``(t_start, t_stop)`` pairs covering ``0:costs.size`` in order.
    """
    n_ranges = max(1, min(int(n_ranges), costs.size))
    cumulative = np.cumsum(costs)
    targets = np.linspace(0, cumulative[-1], n_ranges + 1)[1:-1]
    # a range ends after the task whose cumulative cost reaches its target, ties included
    bounds = np.searchsorted(cumulative, targets, side="right")
    edges = np.unique(np.r_[0, bounds, costs.size])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


class Differences:
    """Centered differences of chosen parameter entries of a network on a batch.

    Parameters
    ----------
    work : Workspace
        The network, parameters and batch after the forward pass.
    epsilon : float
        Step.
    entries : array_like of int, optional
        Flat indices into ``theta`` of the entries to difference; all when
        omitted.
    """

    def __init__(self, work, epsilon, entries=None):
        self.work = work
        self.epsilon = float(epsilon)
        if entries is None:
            layout = full_layout(tuple(int(s) for s in work.sizes))
        else:
            layout = sampled_layout(work, entries)
        (
            self.entries,
            self.task_layer,
            self.task_unit,
            self.entry_ptr,
            self.entry_input,
            self.is_weight,
        ) = layout
        # one compiled variant for the whole run, chosen by its size alone: the serial and
        # the parallel kernels are separate compilations that fast-math may round differently,
        # so the choice must not depend on threads or on how the tasks are split
        self.parallel = self.entries.size * work.batch >= SERIAL_WORK
        self.prepared = False

    def prepare(self):
        """Build the kernel's tables (done by the first :meth:`run`; a no-op after)."""
        if self.prepared:
            return
        work = self.work
        self.wt = np.empty_like(work.theta)
        tables.transpose_weights(work.theta, work.w_off, work.sizes, self.wt)
        self.prob = work.outputs()
        n_layers = len(work.sizes) - 1
        self.reach_in = np.empty((n_layers, work.batch))
        self.nonzero_ptr = np.empty((n_layers, work.batch + 1), dtype=np.int64)
        index = np.empty(int(work.node_off[n_layers]), dtype=np.int64)
        used = tables.input_tables(
            work.acts, work.node_off, work.sizes, self.reach_in, self.nonzero_ptr, index
        )
        self.nonzero_index = index[:used]
        if work.net.loss_name == "binary_cross_entropy":
            self.bernoulli = np.zeros((work.batch, work.sizes[-1], DEGREE + 1))
            tables.bernoulli_table(work.logits, self.bernoulli)
        else:
            self.bernoulli = np.zeros((1, 1, DEGREE + 1))
        self.prepared = True

    @property
    def n_tasks(self):
        """Number of (layer, unit) tasks."""
        return self.task_layer.size

    def task_costs(self):
        """Return the estimated work of each task, in entry-samples weighted by the later layers."""
        work = self.work
        cost = np.diff(self.entry_ptr) * work.batch
        for u in range(1, len(work.sizes)):
            suffix = int(np.sum(work.sizes[u:-1] * work.sizes[u + 1 :])) + int(work.sizes[-1])
            cost = np.where(self.task_layer == u, cost * (1 + suffix / 64.0), cost)
        return cost

    def chunks(self, n_chunks):
        """Split the tasks into at most ``n_chunks`` ranges of similar work.

        Each range keeps at least four tasks per thread, so that splitting the
        work for progress reports does not leave threads idle.
        """
        n_chunks = max(1, min(n_chunks, self.n_tasks // (4 * numba.get_num_threads())))
        return split_tasks(self.task_costs(), n_chunks)

    def run(self, t_start, t_stop, diff, kinks):
        """Run tasks ``t_start:t_stop``, writing their entries of ``diff`` and ``kinks``.

        A run smaller than :data:`SERIAL_WORK` entry-samples in all runs on
        the calling thread: starting the parallel threads would cost more.
        Otherwise every range runs in the parallel kernel, even on one thread,
        so that the results are the same whatever the threads and the ranges.
        """
        self.prepare()
        w = self.work
        lanes = max(1, min(numba.get_num_threads(), int(t_stop - t_start)))
        tasks = (self.task_layer, self.task_unit, self.entry_ptr, self.entry_input)
        net = (
            w.theta,
            w.w_off,
            self.wt,
            w.sizes,
            w.codes,
            w.masks,
            w.node_off,
            w.acts,
            w.pre,
            self.prob,
            w.targets,
            self.bernoulli,
            self.reach_in,
            self.nonzero_ptr,
            self.nonzero_index,
        )
        if not self.parallel:
            finite_diff.centered_differences_serial(
                tasks, int(t_start), int(t_stop), net, w.loss_code, self.epsilon, diff, kinks
            )
        else:
            finite_diff.centered_differences(
                tasks, int(t_start), int(t_stop), lanes, net, w.loss_code, self.epsilon, diff, kinks
            )

    def finish(self, diff):
        """Turn summed per-sample differences into gradient entries (adds the L2 term).

        The kernel differences the course's data term; the network's loss
        convention multiplies it by its exact factor (:func:`MLP.data_scale`).

        The L2 term's centered difference is exact for a quadratic:
        ``l2 / (2m) ((w + eps)^2 - (w - eps)^2) / (2 eps) = l2 w / m``.
        """
        work = self.work
        grad = diff / (2.0 * self.epsilon * work.batch)
        if work.scale != 1.0:
            grad *= work.scale
        if work.l2:
            grad[self.is_weight] += work.l2 / work.batch * work.theta[self.entries[self.is_weight]]
        return grad

    def compute(self, progress=None, n_chunks=1, interruptible=False):
        """Run every task; return ``(gradient entries, kink counts, entries done)``.

        Values are in the order of :attr:`entries`; when ``interruptible`` and
        the user presses Ctrl-C, the run stops after the chunk in progress and
        only the first ``entries done`` values are meaningful.

        Parameters
        ----------
        progress : callable, optional
            Called as ``progress(done, total)`` in entries after each chunk.
        n_chunks : int
            How many kernel calls to split the work into.
        interruptible : bool
            Turn ``KeyboardInterrupt`` into a partial result.
        """
        diff = np.zeros(self.entries.size)
        kinks = np.zeros(self.entries.size, dtype=np.int64)
        done = 0
        ranges = self.chunks(n_chunks) if n_chunks > 1 else [(0, self.n_tasks)]
        try:
            for t_start, t_stop in ranges:
                self.run(t_start, t_stop, diff, kinks)
                done = int(self.entry_ptr[t_stop])
                if progress is not None:
                    progress(done, self.entries.size)
        except KeyboardInterrupt:
            if not interruptible:
                raise
        return self.finish(diff), kinks, done


def numerical_gradient(
    net, params, X, Y, epsilon=DEFAULT_EPSILON, layout="rows", dropout_masks=None, client=None
):
    """Return the centered-difference gradient of every parameter.

    Each entry is ``(J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)``,
    evaluated exactly (to rounding) by the compiled kernel, in parallel over
    parameters, without a full forward pass per parameter.

    Parameters
    ----------
    net : MLP
        The network.
    params : dict
        ``{"W1": ..., "b1": ..., ...}``.
    X, Y : array_like
        A batch, as for :meth:`MLP.loss`.
    epsilon : float, default 1e-7
        Step. The textbook formula subtracts two losses and loses about
        ``u |J| / eps`` to rounding, which is why its best step is near
        ``u ** (1/3) ~ 6e-6``. fastgrad carries each perturbation through the
        network as a difference from the unperturbed pass, so that rounding
        does not apply and only the truncation error (``eps^2 / 6`` times the
        third derivative) remains: the smaller step is the more accurate one.
        Measured on 63 networks (every activation and loss, 3 to 6 layers),
        the largest entry error of a correct gradient is 5e-9 at 1e-7 (all
        CORRECT) and 5e-7 at 1e-6 (one ACCEPTABLE).
    layout : {"rows", "columns"}, default "rows"
        Whether samples are rows or columns of ``X`` and ``Y``.
    dropout_masks : sequence of array_like, optional
        Your own 0/1 dropout keep-masks, one per hidden layer (see
        :meth:`MLP.loss`).
    client : dask.distributed.Client, optional
        Run the parameter loop on this Dask cluster's workers (needs
        ``fastgrad[dask]``; see :mod:`fastgrad.distributed`); the result is
        the local one to the bit.

    Returns
    -------
    dict
        ``{"dW1": ..., "db1": ..., ...}``, each in the shape of its parameter.

    Examples
    --------
    >>> import numpy as np
    >>> import fastgrad as fg
    >>> net = fg.MLP([3, 4, 2], hidden="tanh")
    >>> params = net.init("xavier_normal", seed=1)
    >>> X, y = np.ones((5, 3)), np.array([0, 1, 0, 1, 1])
    >>> numerical = fg.numerical_gradient(net, params, X, y)
    >>> analytic = net.gradients(params, X, y)
    >>> bool(np.allclose(numerical["dW1"], analytic["dW1"], rtol=1e-7, atol=1e-12))
    True
    """
    epsilon = check_epsilon(epsilon)
    if client is not None:
        from .distributed import check_client, compute

        check_client(client)
    work, bias_shapes = net.workspace(params, X, Y, layout, dropout_masks)
    if client is None:
        differences = Differences(work, epsilon)
        values, _, _ = differences.compute()
    else:
        differences, values, _, _, _ = compute(client, work, epsilon)
    flat = np.empty_like(work.theta)
    flat[differences.entries] = values
    return net.packing.unpack(flat, bias_shapes, prefix="d")
