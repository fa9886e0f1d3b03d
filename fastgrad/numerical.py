"""The numerical gradient of a network by centered differences.

:func:`numerical_gradient` is the public entry point; :class:`Differences`
is the wrapper of the kernel :func:`fastgrad.kernels.finite_diff.centered_differences`
that :func:`fastgrad.check` also uses: it turns a set of parameter entries into
the kernel's tasks, runs them in chunks (so that progress can be reported and
a long run interrupted) and scales the result.
"""

import functools
import math

import numba
import numpy as np

from . import _precompile, _scratch
from ._lanes import run_lanes
from ._layer_series import layer_series
from ._line_setup import LineSetup, line_layers, line_series
from ._packing import Packing
from ._scratch import Scratch
from .kernels import finite_diff, tables
from .kernels._jit import direct
from .kernels.jets import ORDER
from .kernels.layer_series import batched
from .kernels.line_series import DEGREE
from .kernels.propagate import COLUMNS
from .kernels.structures import (
    Head,
    Network,
    Results,
    Tables,
    Tasks,
    lane_buffers,
    lane_scratch,
)

SERIAL_WORK = 20_000
"""Estimated work of a whole run (:meth:`Differences.task_costs`: entry-samples, weighted
by the later layers each unit is carried through) under which the kernel runs on the
calling thread."""

METHODS = {"exact": finite_diff.EXACT, "direct": finite_diff.DIRECT}
"""Names of the kernel's methods: the fastest exact path, or layer by layer only."""

PATH_NAMES = ("series", "line", "direct")
"""The kernel's paths, in the order of its per-task counts."""

L2_ROWS = 1 << 16
"""Weights whose L2 term is added at once to a full check's values (bounds a temporary)."""

SUFFIX_SHARE = 1.0 / 64.0
"""Cost of one later-layer multiply-add per (unit, sample), relative to one entry-sample.

The setup of a (unit, sample) through the later layers is paid once and shared by the
row's entries; this weight makes tasks of early layers (long suffixes) count for more
when the work is cut into chunks of similar time. It shapes progress chunks only,
never results."""


def check_method(method):
    """Return the kernel code of ``method`` ("exact" or "direct"), else raise ValueError."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    return METHODS[method]


DEFAULT_EPSILON = 1e-7
"""Default step, the course's; see :func:`numerical_gradient` for why it suits fastgrad."""


def check_epsilon(epsilon):
    """Return ``epsilon`` as a float if it is a finite positive number, else raise."""
    try:
        value = float(epsilon)
    except (TypeError, ValueError):
        raise TypeError(f"epsilon must be a positive number; got {epsilon!r}") from None
    except OverflowError:  # an int beyond float64's range
        value = np.inf
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"epsilon must be a finite positive number; got {epsilon!r}")
    return value


def entry_index_type(n_params):
    """Return the integer type of flat entry indices: int32 when ``n_params`` fits, else int64."""
    return np.int32 if n_params <= np.iinfo(np.int32).max else np.int64


@functools.lru_cache(maxsize=8)
def full_layout(sizes):
    """Return the tasks of a full check of a network of ``sizes``: what the kernel reads.

    Entries are grouped by (layer, unit): row ``i`` of ``W_u`` then ``b_u[i]``
    (:func:`full_entries` gives their flat indices, built only when asked for).

    Returns
    -------
    tuple of ndarray
        ``task_layer``, ``task_unit``, ``entry_ptr``, ``entry_input`` (int32).
    """
    layers, units, counts = [], [], []
    for u in range(1, len(sizes)):
        n_out, n_in = sizes[u], sizes[u - 1]
        layers.append(np.full(n_out, u, dtype=np.int64))
        units.append(np.arange(n_out, dtype=np.int64))
        counts.append(np.full(n_out, n_in + 1, dtype=np.int64))
    counts = np.concatenate(counts)
    entry_input = np.empty(int(counts.sum()), dtype=np.int32)
    start = 0
    for u in range(1, len(sizes)):
        n_out, n_in = sizes[u], sizes[u - 1]
        rows = entry_input[start : start + n_out * (n_in + 1)].reshape(n_out, n_in + 1)
        rows[:] = np.arange(n_in + 1, dtype=np.int32)
        start += n_out * (n_in + 1)
    arrays = (
        np.concatenate(layers),
        np.concatenate(units),
        np.r_[0, np.cumsum(counts)].astype(np.int64),
        entry_input,
    )
    for array in arrays:
        array.flags.writeable = False
    return arrays


def full_entries(sizes):
    """Return the flat indices of a full check's entries, in the order of :func:`full_layout`.

    int32 when every index fits, else int64; with the entries, the boolean
    ``is_weight`` of each.
    """
    packing = Packing(sizes)
    entries = np.empty(packing.size, dtype=entry_index_type(packing.size))
    is_weight = np.ones(packing.size, dtype=bool)
    for u, start, stop in layer_blocks(sizes):
        n_out, n_in = sizes[u], sizes[u - 1]
        grid = entries[start:stop].reshape(n_out, n_in + 1)
        grid[:, :n_in] = packing.offsets[f"W{u}"] + np.arange(n_out * n_in).reshape(n_out, n_in)
        grid[:, n_in] = packing.offsets[f"b{u}"] + np.arange(n_out)
        is_weight[start:stop].reshape(n_out, n_in + 1)[:, n_in] = False
    return entries, is_weight


def layer_blocks(sizes):
    """Yield ``(u, start, stop)``: layer ``u``'s entries in a full check's order (and in theta).

    In both orders a layer's entries are the same range; the check orders
    them ``(n_out, n_in + 1)``, row ``i`` of ``W_u`` then ``b_u[i]``, theta
    ``W_u`` then ``b_u``.
    """
    start = 0
    for u in range(1, len(sizes)):
        stop = start + sizes[u] * (sizes[u - 1] + 1)
        yield u, start, stop
        start = stop


REORDER_BYTES = 1 << 16
"""Bytes of weight rows moved at once by :func:`to_theta_order` (bounds its one temporary)."""


def to_theta_order(values, sizes, chunk=REORDER_BYTES):
    """Reorder a full check's per-entry ``values`` into theta's layout, in place; return them.

    A layer's block moves from ``(n_out, n_in + 1)`` (each weight row then
    its bias) to ``W_u`` then ``b_u``: the rows close up to the left, a
    chunk of rows (at most ``chunk`` bytes) at a time through one small
    temporary, and the biases go after them. No array of the entries' size
    is made.
    """
    itemsize = values.dtype.itemsize
    widest = max(sizes[:-1])
    rows_at_once = max(1, chunk // (widest * itemsize))
    moving = np.empty(rows_at_once * widest, dtype=values.dtype)
    for u, start, stop in layer_blocks(sizes):
        n_out, n_in = sizes[u], sizes[u - 1]
        block = values[start:stop]
        grid = block.reshape(n_out, n_in + 1)
        biases = grid[:, n_in].copy()
        for i in range(0, n_out, rows_at_once):
            j = min(n_out, i + rows_at_once)
            # rows i:j land left of where rows j: are read: every chunk reads before it writes
            part = moving[: (j - i) * n_in].reshape(j - i, n_in)
            part[...] = grid[i:j, :n_in]
            block[i * n_in : j * n_in] = moving[: (j - i) * n_in]
        block[n_out * n_in :] = biases
    return values


SMALL_REORDER = 1 << 16
"""Parameters up to which a full check's results are reordered by a permutation cached per
shape (:func:`_theta_order`, one gather per array) rather than in place layer by layer."""


@functools.lru_cache(maxsize=8)
def _theta_order(sizes):
    """Return ``order``, with ``values[order]`` :func:`to_theta_order` of a full check's values."""
    n_params = sum(sizes[u] * (sizes[u - 1] + 1) for u in range(1, len(sizes)))
    order = to_theta_order(np.arange(n_params, dtype=np.int64), sizes)
    order.flags.writeable = False
    return order


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
        column.astype(np.int32),
        column < sizes[layer - 1],
    )


@functools.lru_cache(maxsize=8)
def _suffix_factors(sizes):
    """Return each node layer's cost per entry-sample of its tasks (``[0]`` unused).

    ``1 + SUFFIX_SHARE`` times the multiply-adds of the layers after ``u``.
    """
    factors = np.ones(len(sizes))
    for u in range(1, len(sizes)):
        suffix = sum(a * b for a, b in zip(sizes[u:-1], sizes[u + 1 :], strict=True))
        factors[u] = 1 + (suffix + sizes[-1]) * SUFFIX_SHARE
    factors.flags.writeable = False
    return factors


@functools.lru_cache(maxsize=8)
def _full_run_parallel(sizes, batch):
    """Whether a full check of a network of ``sizes`` on ``batch`` samples starts threads.

    :meth:`Differences.task_costs` summed over the tasks of :func:`full_layout`,
    against :data:`SERIAL_WORK`: the same sum for every check of that shape.
    """
    task_layer, _, entry_ptr, _ = full_layout(sizes)
    costs = (entry_ptr[1:] - entry_ptr[:-1]) * batch * _suffix_factors(sizes)[task_layer]
    return float(costs.sum()) >= SERIAL_WORK


@functools.lru_cache(maxsize=8)
def _full_line_layers(sizes, codes, batch):
    """:func:`line_layers` of a network, as a full check (every layer asked for) uses them."""
    return tuple(line_layers(sizes, np.asarray(codes, dtype=np.int64), batch))


@functools.lru_cache(maxsize=8)
def _batched_layers(codes):
    """Node layers of a network of activation ``codes`` whose series are batched."""
    array = np.asarray(codes, dtype=np.int64)
    return tuple(u for u in range(1, len(codes) - 1) if batched(u, array))


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


def _placeholder(dtype, ndim, writeable=True):
    array = np.zeros((0,) * ndim, dtype=dtype)
    array.flags.writeable = writeable
    return array


def kernel_signature(full=True):
    """Return the numba types of the finite-difference kernel's arguments in a check.

    The kernel is :func:`~fastgrad.kernels.finite_diff.centered_differences`,
    and no check is built. Every array the kernel takes is a C-contiguous array whose dtype and
    dimensions are fixed by the code (:meth:`Differences.kernel_arguments`);
    only the tasks differ, read-only in a full check (cached per network
    shape) and writable in a sampled one. The types are those of empty
    arrays of the same kinds, so that a first-ever check can have the kernel
    compiled before its arguments exist (:mod:`fastgrad._precompile`).

    Parameters
    ----------
    full : bool, default True
        The types of a full check's call (else of a sampled one's).

    Returns
    -------
    tuple of numba types
    """
    f64, i64 = np.float64, np.int64
    tasks = Tasks(*(_placeholder(t, 1, not full) for t in (i64, i64, i64, np.int32)))
    net = Network(*(_placeholder(t, 1) for t in (f64, i64, i64, i64, i64, f64, f64, i64, f64, f64)))
    head = Head(_placeholder(f64, 2), _placeholder(f64, 2), _placeholder(f64, 3))
    tables = Tables(
        _placeholder(f64, 1),
        _placeholder(f64, 2),
        _placeholder(i64, 2),
        _placeholder(i64, 1),
        _placeholder(f64, 2),
        _placeholder(np.int8, 1),
    )
    out = Results(
        _placeholder(f64, 1),
        _placeholder(np.int32, 1),
        _placeholder(f64, 1),
        _placeholder(np.bool_, 1),
        _placeholder(i64, 2),
    )
    lanes = lane_scratch(1, 1, 0, 0, 1)
    arguments = (0, 1, tasks, 0, 0, net, head, tables, 0, 0, 0.0, lanes, out)
    return tuple(numba.typeof(a) for a in arguments)


class _FullEntries:
    """An entry table of :class:`Differences`, a full check's built on first read.

    Both tables of a full check come from one call of :func:`full_entries`,
    which a check that never reads them does not pay for.
    A table can be assigned (a distributed check's part takes a slice).
    """

    def __init__(self, doc):
        self.__doc__ = doc

    def __set_name__(self, owner, name):
        self.stored = "_" + name

    def __get__(self, differences, owner=None):
        if differences is None:
            return self
        value = getattr(differences, self.stored)
        if value is None:
            differences._build_entries()
            value = getattr(differences, self.stored)
        return value

    def __set__(self, differences, value):
        setattr(differences, self.stored, value)


def _lane_scratch(scratch, lanes, width):
    """Return zeroed :func:`lane_scratch` for the kernel, kept in ``scratch`` between checks.

    Its three buffers are the scratch's; the views of them are built once
    (:meth:`Scratch.group <fastgrad._scratch.Scratch.group>`) and zeroed
    again by one ``fill`` per buffer.
    """

    def build():
        sizes = lane_buffers(lanes, width, ORDER, DEGREE, COLUMNS)
        buffers = tuple(
            scratch.zeros(f"lanes_{kind}", size, dtype=dtype)
            for kind, (size, dtype) in enumerate(sizes)
        )
        return lane_scratch(lanes, width, ORDER, DEGREE, COLUMNS, buffers), buffers

    views, buffers = scratch.group("lanes", (lanes, width), build)
    for buffer in buffers:
        buffer.fill(0)
    return views


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
    method : {"exact", "direct"}, default "exact"
        ``"exact"`` takes the fastest exact path for each (unit, sample);
        ``"direct"`` carries every evaluation layer by layer, no series.
    scratch : Scratch, optional
        Where the working arrays come from (:mod:`fastgrad._scratch`): the
        tables, the line setup and the kink widths; by default allocated
        afresh. The values, kink counts and intervals never come from it.

    Attributes
    ----------
    entries : ndarray
        The flat indices differenced, in the order of the values.
    kink_index : int64 ndarray or None
        After :meth:`compute`: the positions (in the order of the values) of
        the entries that crossed a kink, ascending; ``None`` when none did.
    kink_lo, kink_hi : ndarray or None
        After :meth:`compute`: for each entry of :attr:`kink_index`, the
        interval spanned by the exact centered differences of the samples
        that cross no kink plus, for each sample whose evaluation at ``theta
        +- eps e_i`` crosses one, its two one-sided differences; scaled like
        the values, so ``kink_lo <= value <= kink_hi``. ``None`` when no
        entry crossed a kink. The other entries' intervals are their values
        and are not stored.
    unverifiable : ndarray of bool
        After :meth:`compute`: entries where some sample met more than one
        kink in its two evaluations, so that the interval need not hold
        backprop's value at the kink.
    paths : dict
        After :meth:`compute`: ``{"series": n, "line": n, "direct": n}``,
        entry-samples produced by each path (identical for any thread count;
        those known to be exactly 0 before any path runs, from a dropped or
        unmoved unit, count in none).
    """

    def __init__(self, work, epsilon, entries=None, method="exact", scratch=None):
        self.work = work
        self.scratch = Scratch() if scratch is None else scratch
        self.epsilon = float(epsilon)
        self.method = check_method(method)
        self.full = entries is None
        # the network's shape as Python ints (an MLP keeps them so): keys of per-shape caches
        self._sizes = tuple(work.net.sizes)
        if self.full:
            self._entries = self._is_weight = None
            layout = full_layout(self._sizes)
        else:
            self._entries, *layout, self._is_weight = sampled_layout(work, entries)
        self.task_layer, self.task_unit, self.entry_ptr, self.entry_input = layout
        # whether to start the threads, by the run's size alone (the same compiled kernel
        # runs either way). The size counts the later layers: a few sampled entries of a
        # wide network cost minutes
        if self.full:
            self.parallel = _full_run_parallel(self._sizes, int(work.batch))
        else:
            self.parallel = float(self.task_costs().sum()) >= SERIAL_WORK
        self.prepared = False

    def prepare(self):
        """Build the kernel's tables (done by the first :meth:`run`; a no-op after)."""
        if self.prepared:
            return
        work, scratch = self.work, self.scratch
        # the kernels' view of the workspace, built once for the runs that follow
        self.network = work.network
        self.head = work.head()
        n_layers = len(work.sizes) - 1
        self.line_layers = self._line_layers()
        self.batched_layers = self._batched_layers()
        series = self.batched_layers or self.line_layers
        wt, reach_in, nonzero_ptr, index, coefficients, ready = self._table_arrays(bool(series))
        tables.transpose_weights(work.theta, work.w_off, work.sizes, wt)
        used = tables.input_tables(
            work.acts, work.node_off, work.sizes, reach_in, nonzero_ptr, index
        )
        # shared by every run (and by the task ranges of a distributed check)
        self.lines_set_up = False
        self.layers_in_series = set()  # the batched layers whose series are computed
        hidden = [u for u in self.line_layers if u < n_layers]
        self.line_setup = LineSetup(self.network, min(hidden), scratch) if hidden else None
        self.tables = Tables(wt, reach_in, nonzero_ptr, index[:used], coefficients, ready)
        self.prepared = True

    def _table_arrays(self, series):
        """Return the working arrays of :class:`Tables`, ``series_ready`` zeroed.

        ``(wt, reach_in, nonzero_ptr, nonzero_index, series, series_ready)``
        from the scratch; one that keeps them hands back the same six for a
        network and batch of the same shape without asking for each again.
        """
        work, scratch = self.work, self.scratch
        n_layers = len(work.sizes) - 1
        n_inner, n_nodes = work.node_off[n_layers : n_layers + 2].tolist()
        shape = (work.theta.size, n_layers, work.batch, n_inner, n_nodes, series)
        arrays = scratch.group("tables", shape, lambda: self._new_table_arrays(series))
        arrays[5].fill(0)
        return arrays

    def _new_table_arrays(self, series):
        work, scratch = self.work, self.scratch
        n_layers = len(work.sizes) - 1
        n_inner, n_nodes = work.node_off[n_layers : n_layers + 2].tolist()
        return (
            scratch.empty("wt", work.theta.size),
            scratch.empty("reach_in", (n_layers, work.batch)),
            scratch.empty("nonzero_ptr", (n_layers, work.batch + 1), dtype=np.int64),
            scratch.empty("nonzero_index", n_inner, dtype=np.int64),
            scratch.empty("series", (n_nodes if series else 0, ORDER + 1)),
            scratch.empty("series_ready", n_nodes, dtype=np.int8),
        )

    def _batched_layers(self):
        """Node layers whose units' series are computed for the whole layer at once."""
        if self.method != finite_diff.EXACT:
            return []
        return list(_batched_layers(self.work.net.activation_codes))

    def _line_layers(self):
        """Node layers, among the tasks', whose units' series are set up at once along lines."""
        if self.method != finite_diff.EXACT:
            return []
        w = self.work
        if self.full:
            return list(_full_line_layers(self._sizes, w.net.activation_codes, int(w.batch)))
        asked = set(np.unique(self.task_layer).tolist())
        return [u for u in line_layers(w.sizes, w.network.codes, int(w.batch)) if u in asked]

    def _line_series(self):
        """Set up the series of every task's unit in line layers (done by the first run).

        All at once rather than chunk by chunk: it costs a few percent of
        the run, and one call per layer instead of one per layer and chunk.
        """
        if not self.line_layers or self.lines_set_up:
            return
        self.lines_set_up = True
        w = self.work
        for u, units in self._units_by_layer(self.line_layers):
            line_series(
                self.network,
                self.line_setup,
                self.head,
                self.tables,
                w.loss_code,
                self.epsilon,
                u,
                units,
            )

    def _layer_series(self, t_start, t_stop):
        """Compute the series of the batched layers that tasks ``t_start:t_stop`` move.

        Each such layer once, for the units of all the tasks at once, by the first run that
        moves it: a unit's series goes through matrix products whose last bits depend on
        the other columns of the product (BLAS's blocking), so the units carried together
        must not depend on the task ranges, which follow the thread count
        (:meth:`chunks`).
        """
        if not self.batched_layers:  # read once by prepare: most networks have none
            return
        w = self.work
        moved = {u for u, _ in self._units_by_layer(self.batched_layers, t_start, t_stop)}
        for u, units in self._units_by_layer(sorted(moved - self.layers_in_series)):
            self.layers_in_series.add(u)
            layer_series(self.network, self.head, self.tables, w.loss_code, self.epsilon, u, units)

    def _units_by_layer(self, layers, t_start=0, t_stop=None):
        """Yield ``(u, units)``: the units of node layer ``u`` that tasks ``t_start:t_stop`` move.

        For each layer of ``layers`` with any, as a contiguous int64 array;
        all of a full check's tasks move every unit of their layers.
        """
        if self.full and t_start == 0 and t_stop is None:
            for u in layers:  # every unit of the layer, in order
                yield u, np.arange(self._sizes[u], dtype=np.int64)
            return
        task_layer = self.task_layer[t_start:t_stop]
        task_unit = self.task_unit[t_start:t_stop]
        for u in layers:
            chosen = task_unit[task_layer == u]
            if chosen.size:
                yield u, np.ascontiguousarray(chosen, dtype=np.int64)

    def _build_entries(self):
        """Build the flat indices and weight flags of a full check's entries."""
        self._entries, self._is_weight = full_entries(tuple(int(s) for s in self.work.sizes))

    entries = _FullEntries("The flat indices differenced, in the order of the values.")
    is_weight = _FullEntries("Whether each entry of :attr:`entries` is a weight (else a bias).")

    @property
    def size(self):
        """Number of entries differenced."""
        return int(self.entry_ptr[-1])

    @property
    def n_tasks(self):
        """Number of (layer, unit) tasks."""
        return self.task_layer.size

    def task_costs(self):
        """Return the estimated work of each task, in entry-samples weighted by the later layers."""
        factors = _suffix_factors(tuple(int(s) for s in self.work.sizes))
        entries = self.entry_ptr[1:] - self.entry_ptr[:-1]
        return entries * self.work.batch * factors[self.task_layer]

    def chunks(self, n_chunks):
        """Split the tasks into at most ``n_chunks`` ranges of similar work.

        Each range keeps at least four tasks per thread, so that splitting the
        work for progress reports does not leave threads idle.
        """
        n_chunks = max(1, min(n_chunks, self.n_tasks // (4 * numba.get_num_threads())))
        return split_tasks(self.task_costs(), n_chunks)

    def new_results(self):
        """Return zeroed :class:`~fastgrad.kernels.structures.Results` for these entries, tasks."""
        n = int(self.entry_ptr[-1])
        scratch = self.scratch
        kink_width, unverifiable = scratch.group(
            "results",
            n,
            lambda: (scratch.empty("kink_width", n), scratch.empty("unverifiable", n, np.bool_)),
        )
        kink_width.fill(0)
        unverifiable.fill(False)
        return Results(  # by position, in the order of its fields: built once per run
            np.zeros(n),  # diff
            np.zeros(n, dtype=np.int32),  # kinks
            kink_width,
            unverifiable,
            np.zeros((self.task_layer.size, len(PATH_NAMES)), dtype=np.int64),  # paths
        )

    def run(self, t_start, t_stop, out):
        """Run tasks ``t_start:t_stop``, writing their entries (and tasks) of ``out``.

        ``out`` is a :class:`~fastgrad.kernels.structures.Results` (see
        :meth:`new_results`). A run of less than :data:`SERIAL_WORK` in all
        (estimated by :meth:`task_costs`) runs on the calling thread: starting the
        threads would cost more. Otherwise the tasks are dealt to one lane per
        numba thread (:func:`fastgrad._lanes.run_lanes`). Every run calls the same
        compiled kernel, so the results are the same whatever the threads and the
        ranges.
        """
        self.prepare()
        self._layer_series(t_start, t_stop)
        self._line_series()
        lanes = 1
        if self.parallel:
            lanes = max(1, min(numba.get_num_threads(), int(t_stop - t_start)))
        kernel = finite_diff.centered_differences
        _precompile.wait_for(kernel)  # a first-ever check may be compiling it in a child
        run_lanes(direct(kernel), lanes, *self.kernel_arguments(t_start, t_stop, out, lanes)[2:])

    def kernel_arguments(self, t_start, t_stop, out, lanes=1):
        """Return the arguments of the kernel's call for lane 0 of ``lanes``, scratch included.

        Their numba types are :func:`kernel_signature`'s.
        """
        w = self.work
        tasks = Tasks(self.task_layer, self.task_unit, self.entry_ptr, self.entry_input)
        width = max(1, *self._sizes)
        return (
            0,
            lanes,
            tasks,
            int(t_start),
            int(t_stop),
            self.network,
            self.head,
            self.tables,
            w.loss_code,
            self.method,
            self.epsilon,
            _lane_scratch(self.scratch, lanes, width),
            out,
        )

    def finish(self, diff):
        """Turn summed per-sample differences into gradient entries (adds the L2 term), in place.

        The kernel differences the course's data term; the network's loss
        convention multiplies it by its exact factor (:func:`MLP.data_scale`).

        The L2 term's centered difference is exact for a quadratic:
        ``l2 / (2m) ((w + eps)^2 - (w - eps)^2) / (2 eps) = l2 w / m``.
        ``diff`` is overwritten and returned, so that no second array of the
        entries' size is made.
        """
        work = self.work
        grad = np.divide(diff, 2.0 * self.epsilon * work.batch, out=diff)
        if work.scale != 1.0:
            grad *= work.scale
        if work.l2 and not self.full:
            grad[self.is_weight] += work.l2 / work.batch * work.theta[self.entries[self.is_weight]]
        elif work.l2:
            # layer by layer, a few rows at a time: no index or temporary of the entries' size
            sizes, packing = self.work.sizes, self.work.net.packing
            for u, start, stop in layer_blocks(tuple(int(s) for s in sizes)):
                n_out, n_in = int(sizes[u]), int(sizes[u - 1])
                rows = grad[start:stop].reshape(n_out, n_in + 1)
                weight = work.theta[packing.slice(f"W{u}")].reshape(n_out, n_in)
                step = max(1, L2_ROWS // n_in)
                for i in range(0, n_out, step):
                    rows[i : i + step, :n_in] += work.l2 / work.batch * weight[i : i + step]
        return grad

    def summarize(self, out):
        """Return the gradient entries of ``out``; set the kink interval and the path counts.

        Sets :attr:`kink_index`, :attr:`kink_lo`, :attr:`kink_hi`,
        :attr:`unverifiable` and :attr:`paths` from a filled
        :class:`~fastgrad.kernels.structures.Results`, whose ``diff`` becomes
        the values. Intervals are kept for the entries that crossed a kink
        only (none, ``None``, when no entry did).
        """
        values = self.finish(out.diff)
        self.unverifiable = out.unverifiable
        self.paths = dict(zip(PATH_NAMES, np.add.reduce(out.paths, axis=0).tolist(), strict=True))
        self.kink_index = self.kink_lo = self.kink_hi = None
        kinked = out.kinks.nonzero()[0]
        if kinked.size:
            width = out.kink_width[kinked]
            width /= 2.0 * self.epsilon * self.work.batch
            if self.work.scale != 1.0:
                width *= self.work.scale
            self.kink_index = kinked
            self.kink_hi = values[kinked] + width
            self.kink_lo = np.subtract(values[kinked], width, out=width)
        return values

    def spread(self, values, kinks, done):
        """Return the results laid out like theta, as :func:`fastgrad.check` reports them.

        ``values`` and ``kinks`` are in the order of :attr:`entries`; ``done``
        selects the computed ones (a count of leading entries, or a boolean
        mask). A full check's arrays are reordered in place and returned
        (no array of the parameters' size is made but ``checked``), or for a
        network of at most :data:`SMALL_REORDER` parameters gathered into new
        ones; a sampled one's are spread over new arrays, NaN where not computed.

        Returns
        -------
        dict
            ``numerical``, ``checked`` (bool), ``kinks`` (int32) of every
            parameter; with intervals, ``kink_index`` (the flat indices of
            the computed entries that crossed a kink, ascending) and their
            ``kink_lo``, ``kink_hi`` and ``unverifiable``.
        """
        size, n_entries = self.work.net.packing.size, self.size
        mask = isinstance(done, np.ndarray) and done.ndim
        everything = not mask and done >= n_entries  # the common case: nothing to blank
        if everything:
            computed = np.empty(n_entries, dtype=bool)
            computed.fill(True)  # numpy.ones is a Python function, twice the cost here
        else:
            computed = np.zeros(n_entries, dtype=bool)
            computed[done if mask else slice(done)] = True
        found = {}
        if self.kink_index is not None:
            keep = computed[self.kink_index]
            where = self.flat_indices(self.kink_index[keep])
            order = np.argsort(where, kind="stable")
            found["kink_index"] = where[order]
            found["kink_lo"] = self.kink_lo[keep][order]
            found["kink_hi"] = self.kink_hi[keep][order]
            found["unverifiable"] = self.unverifiable[self.kink_index[keep]][order]
        if self.full:
            sizes = self._sizes
            if not everything:
                missing = ~computed
                values[missing] = np.nan
                kinks[missing] = 0
            kinks = kinks.astype(np.int32, copy=False)
            if size <= SMALL_REORDER:
                order = _theta_order(sizes)
                numerical, kink_counts = values[order], kinks[order]
                # every entry computed: the mask is the same in either order
                checked = computed if everything else computed[order]
            else:
                numerical = to_theta_order(values, sizes)
                kink_counts = to_theta_order(kinks, sizes)
                checked = to_theta_order(computed, sizes)
        else:
            numerical = np.full(size, np.nan)
            checked = np.zeros(size, dtype=bool)
            kink_counts = np.zeros(size, dtype=np.int32)
            entries = self.entries[computed]
            numerical[entries] = values[computed]
            checked[entries] = True
            kink_counts[entries] = kinks[computed]
        found.update(numerical=numerical, checked=checked, kinks=kink_counts)
        return found

    def flat_indices(self, positions):
        """Return the flat indices into theta of the entries at ``positions`` (int64)."""
        if not self.full:
            return self.entries[positions].astype(np.int64)
        sizes = tuple(int(s) for s in self.work.sizes)
        packing = self.work.net.packing
        positions = np.asarray(positions, dtype=np.int64)
        out = np.empty(positions.size, dtype=np.int64)
        for u, start, stop in layer_blocks(sizes):
            mine = (positions >= start) & (positions < stop)
            row, column = np.divmod(positions[mine] - start, sizes[u - 1] + 1)
            bias = column == sizes[u - 1]
            out[mine] = np.where(
                bias,
                packing.offsets[f"b{u}"] + row,
                packing.offsets[f"W{u}"] + row * sizes[u - 1] + column,
            )
        return out

    def compute(self, progress=None, n_chunks=1, interruptible=False):
        """Run every task; return ``(gradient entries, kink counts, entries done)``.

        Values are in the order of :attr:`entries`; when ``interruptible`` and
        the user presses Ctrl-C, the run stops after the chunk in progress and
        only the first ``entries done`` values are meaningful. Also sets
        :attr:`kink_index`, :attr:`kink_lo`, :attr:`kink_hi`,
        :attr:`unverifiable` and :attr:`paths` (:meth:`summarize`). The
        transposed weights are let go of after the run (:meth:`release`).

        Parameters
        ----------
        progress : callable, optional
            Called as ``progress(done, total)`` in entries after each chunk.
        n_chunks : int
            How many kernel calls to split the work into.
        interruptible : bool
            Turn ``KeyboardInterrupt`` into a partial result.
        """
        out = self.new_results()
        done = 0
        ranges = self.chunks(n_chunks) if n_chunks > 1 else [(0, self.n_tasks)]
        try:
            for t_start, t_stop in ranges:
                self.run(t_start, t_stop, out)
                done = int(self.entry_ptr[t_stop])
                if progress is not None:
                    progress(done, self.size)
        except KeyboardInterrupt:
            if not interruptible:
                raise
        finally:
            self.release()
        return self.summarize(out), out.kinks, done

    def release(self):
        """Let go of the transposed weights (a copy of theta's size) and the line setup.

        The other tables stay readable; a next run builds all of them again.
        A :attr:`scratch` that keeps them (a network's, within its limit)
        keeps them for the next check instead of freeing them.
        """
        if self.prepared:
            if not self.scratch.limit:  # a scratch that keeps them holds them anyway
                self.tables = Tables(np.empty(0), *self.tables[1:])
            self.line_setup = None
            self.prepared = False


def numerical_gradient(
    net,
    params,
    X,
    Y,
    epsilon=DEFAULT_EPSILON,
    layout="rows",
    dropout_masks=None,
    client=None,
    method="exact",
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
    method : {"exact", "direct"}, default "exact"
        ``"exact"``: the fastest exact path for each unit and sample (power
        series where a bound certifies them, docs/algorithm.md).
        ``"direct"``: every ``J(theta +- eps e_i)`` carried layer by layer as
        differences from the unperturbed pass, no power series, for a check
        that relies on no derivative formula. Both agree to rounding.

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
    check_method(method)
    if client is not None:
        from .distributed import check_client, compute

        check_client(client)
    if client is None:
        # the working arrays of the last local run on this network (fastgrad._scratch)
        spare, scratch = net._take_spare(), _scratch.take(net)
        work, bias_shapes = net.workspace(params, X, Y, layout, dropout_masks, **spare)
        differences = Differences(work, epsilon, method=method, scratch=scratch)
        values, _, _ = differences.compute()
        net._give_back(work)
        _scratch.give_back(net, scratch)
    else:
        work, bias_shapes = net.workspace(params, X, Y, layout, dropout_masks)
        differences, values, _, _, _ = compute(client, work, epsilon, method=method)
    if differences.full and client is None:
        flat = to_theta_order(values, tuple(net.sizes))
    else:
        flat = np.empty_like(work.theta)
        flat[differences.entries] = values
    return net.packing.unpack(flat, bias_shapes, prefix="d")
