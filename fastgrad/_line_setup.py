"""The series path for every unit of a layer followed by piecewise-linear layers, set up at once.

For a node layer ``u`` after which every hidden layer is identity, relu or
leaky relu (:func:`fastgrad.kernels.line_setup.is_line_layer`), the one-unit
path carries each (unit, sample)'s change through every later layer, ``batch
x n_u x sum_k n_k n_{k+1}`` multiply-adds per layer. Along a piecewise-linear
suffix that carry only ever yields the direction in which the logits move,
column ``i`` of the Jacobian ``G_u[b]`` of the logits with respect to
``A_u[b]``, and the fact that no later unit changes side. Here the Jacobians
of all samples come from reverse accumulation, ``G_{k-1} = (G_k D_k) W_k``
with ``D_k`` the slopes times the dropout multipliers, one matrix product
per layer for the whole batch (``batch x n_out`` rows: the work of ``n_out /
3`` backprops in all); the side condition from the bounds of
:mod:`fastgrad.kernels.line_setup` (the next layer exactly, the later ones
by Cauchy-Schwarz with per-sample norms of the masked weights, three more
products per layer). A (unit, sample) the bounds do not decide is left to
the one-unit path, which carries it exactly, kinks included.
"""

import functools

import numpy as np

from ._passes import blas_threads
from ._scratch import Scratch
from .kernels import line_setup
from .kernels._jit import direct
from .kernels.activations import PIECEWISE_LINEAR

SETUP_WORK = 50_000
"""Multiply-adds of the one-unit carry below which the hidden layers are not set up.

The setup's cost is mostly fixed (a few dozen numpy calls per layer); the
one-unit path's grows with :func:`carry_work`. Measured on relu networks at
one numba thread, the two cost the same between 5e4 and 9e4 multiply-adds of
the carry (a 64-32-16-10 network at batch 16, 9.3e4, is faster set up).
"""


def carry_work(sizes, batch, hidden):
    """Return the multiply-adds of carrying every unit of ``hidden`` layers one at a time.

    A unit of layer ``u`` reaches layer ``u + 1`` through one column of
    ``W_{u+1}``, every later layer through a whole matrix, in each of the
    ``batch`` samples.
    """
    n_layers = len(sizes) - 1
    work = 0
    for u in hidden:
        suffix = sizes[u + 1] + sum(sizes[k] * sizes[k + 1] for k in range(u + 1, n_layers))
        work += batch * sizes[u] * suffix
    return work


def line_layers(sizes, codes, batch):
    """Return the node layers whose units' series are set up at once.

    The logits always (each moves the loss along its own axis). A hidden
    layer when every hidden layer after it is piecewise linear and it has at
    least as many units as the network has outputs: per sample the setup
    costs about ``n_out`` carries of one unit (the Jacobian's rows), in
    matrix products. No hidden layer when carrying all of their units one at
    a time costs less than :data:`SETUP_WORK` multiply-adds
    (:func:`carry_work`): the one-unit path then computes the same exact
    centered differences sooner. The choice depends on the network and the
    batch alone, never on the entries asked for, so that a sampled check
    computes each entry exactly as a full one does.
    """
    sizes = [int(s) for s in sizes]
    n_layers = len(sizes) - 1
    hidden = [
        u
        for u in range(1, n_layers)
        if line_setup.is_line_layer(u, codes) and sizes[u] >= sizes[-1]
    ]
    if carry_work(sizes, int(batch), hidden) < SETUP_WORK:
        hidden = []
    return [*hidden, n_layers]


@functools.lru_cache(maxsize=16)
def _safety(n_layers, width):
    """:func:`~fastgrad.kernels.line_setup.bound_safety`, once per network shape."""
    return line_setup.bound_safety(n_layers, width)


class LineSetup:
    """The Jacobians and bounds shared by the layers of one network and batch.

    Parameters
    ----------
    net : Network
        The network after its forward pass.
    first : int
        The earliest node layer to set up; the Jacobians are built from the
        logits down to it.
    scratch : Scratch, optional
        Where the slopes, Jacobians, directions and row bounds are kept
        (:mod:`fastgrad._scratch`); by default allocated afresh.
    """

    def __init__(self, net, first, scratch=None):
        self.net = net
        self.scratch = scratch = Scratch() if scratch is None else scratch
        # plain ints: a small network's setup takes less time than numpy's scalars in it
        sizes = net.sizes.tolist()
        self._sizes = sizes
        self._w_off = net.w_off.tolist()
        n_layers = len(sizes) - 1
        self.batch = (int(net.node_off[1]) - int(net.node_off[0])) // sizes[0]
        n_out = sizes[n_layers]
        self.slopes = {}
        for k in range(first + 1, n_layers):
            out = scratch.empty(("slopes", k), (self.batch, sizes[k]))
            line_setup.slopes(k, net, out)
            self.slopes[k] = out
        width = max(sizes[first:])
        with blas_threads(work=self.batch * n_out * width * width):
            # G_{L-1} = W_L in every sample; G_{k-1}[b] = (G_k[b] D_k[b]) W_k
            self.jacobians = {}
            g = np.broadcast_to(self._weight(n_layers), (self.batch, n_out, sizes[n_layers - 1]))
            self.jacobians[n_layers - 1] = g
            for k in range(n_layers - 1, first, -1):
                scaled = scratch.empty(("scaled", k), (self.batch, n_out, sizes[k]))
                np.multiply(g, self.slopes[k][:, None, :], out=scaled)
                g = scratch.empty(("jacobian", k - 1), (self.batch * n_out, sizes[k - 1]))
                np.matmul(scaled.reshape(self.batch * n_out, sizes[k]), self._weight(k), out=g)
                g = g.reshape(self.batch, n_out, sizes[k - 1])
                self.jacobians[k - 1] = g
            # R_k[b, q]^2 = sum_p W_k[q, p]^2 |D_{k-1}[b, p]|, for k = first + 2 ..
            self.rows = {}
            for k in range(first + 2, n_layers):
                weight = self._weight(k)
                square = np.square(weight, out=scratch.empty(("square", k), weight.shape))
                size = scratch.empty(("slope_size", k - 1), self.slopes[k - 1].shape)
                rows = scratch.empty(("rows", k), (self.batch, sizes[k]))
                np.matmul(np.abs(self.slopes[k - 1], out=size), square.T, out=rows)
                self.rows[k] = np.sqrt(rows, out=rows)
        self.reach = {}
        self.spread = {}
        for k in self.rows:
            h = np.empty(self.batch)
            line_setup.later_layer_reach(k, net, self.rows[k], h)
            self.reach[k] = h
            # F_k[b]^2 = sum_q |D_k[b, q]| R_k[b, q]^2 (only through hidden layers)
            self.spread[k] = np.sqrt(
                np.einsum("bq,bq->b", np.abs(self.slopes[k]), self.rows[k] ** 2)
            )
        self.safety = _safety(n_layers, max(sizes))
        self._bounds = {}
        self._directions = {}

    def _weight(self, k):
        """``W_k``, ``(sizes[k], sizes[k - 1])``, a view of the network's ``theta``."""
        start, n_out, n_in = self._w_off[k], self._sizes[k], self._sizes[k - 1]
        return self.net.theta[start : start + n_out * n_in].reshape(n_out, n_in)

    def directions(self, u):
        """Return ``G_u`` as ``(batch, sizes[u], n_out)``: each unit's direction, contiguous."""
        if u not in self._directions:
            jacobian = self.jacobians[u]
            batch, n_out, width = jacobian.shape
            out = self.scratch.empty(("directions", u), (batch, width, n_out))
            out[...] = jacobian.transpose(0, 2, 1)
            self._directions[u] = out
        return self._directions[u]

    def bounds(self, u):
        """Return ``(column_top, nearest, c, H)`` of layer ``u`` (see :func:`line_series`), once."""
        if u not in self._bounds:
            self._bounds[u] = (*self.next_bounds(u), self.column_norms(u), self.later(u))
        return self._bounds[u]

    def later(self, u):
        """Return ``H[b]``: no unit of layers ``u + 2 ..`` crosses while ``|s| c[b, i] < H[b]``."""
        n_layers = len(self._sizes) - 1
        bound = np.full(self.batch, np.inf)
        if u + 2 >= n_layers:
            return bound
        factor = np.ones(self.batch)
        for k in range(u + 2, n_layers):
            with np.errstate(divide="ignore", invalid="ignore"):
                # a zero growth factor means nothing reaches layer k: no bound from it
                step = np.where(factor > 0.0, self.reach[k] / factor, np.inf)
            bound = np.minimum(bound, step)
            factor = factor * self.spread[k]
        return bound

    def column_norms(self, u):
        """Return ``c[b, i]``, ``c^2 = sum_q |D_{u+1}[b, q]| W_{u+1}[q, i]^2`` (0 if unused)."""
        sizes = self._sizes
        if u + 2 >= len(sizes) - 1:
            return np.zeros((self.batch, sizes[u]))
        square = self._weight(u + 1) ** 2
        with blas_threads(work=self.batch * square.size):
            return np.sqrt(np.abs(self.slopes[u + 1]) @ square)

    def next_bounds(self, u):
        """Return ``(column_top, nearest)``: the next layer's reach in one product.

        ``column_top[i] = max_q |W_{u+1}[q, i]|`` and ``nearest[b]`` of
        :func:`~fastgrad.kernels.line_setup.nearest_kinks` (zeros when ``u +
        1`` is the output layer).
        """
        sizes = self._sizes
        nearest = np.zeros(self.batch)
        if u + 1 == len(sizes) - 1:
            return np.zeros(sizes[u]), nearest
        line_setup.nearest_kinks(u + 1, self.net, nearest)
        return np.abs(self._weight(u + 1)).max(axis=0), nearest


def line_series(net, setup, head, tables, loss_code, epsilon, u, units):
    """Fill the series of ``units`` of layer ``u`` in every sample, where certified.

    Parameters
    ----------
    net : Network
        The network after its forward pass.
    setup : LineSetup or None
        The network's Jacobians and bounds, built down to ``u`` or below
        (not used for the logits, ``u = L``).
    head : Head
        Its loss side.
    tables : Tables
        The check's tables: reads ``wt`` and ``reach_in``; writes ``series``
        and ``series_ready`` of the units (see
        :func:`~fastgrad.kernels.line_setup.finish_line_series`).
    loss_code : int
        Loss code.
    epsilon : float
        Step.
    u : int
        Node layer; :func:`~fastgrad.kernels.line_setup.is_line_layer` holds.
    units : ndarray of int64
        Units of layer ``u``.
    """
    radius = epsilon * tables.reach_in[u - 1]
    coef, ready = tables.series, tables.series_ready
    if u == net.sizes.size - 1:
        direct(line_setup.finish_logit_series)(units, radius, net, head, loss_code, coef, ready)
        return
    if not line_setup.is_line_layer(u, net.codes):
        raise ValueError(f"line_series: layer {u} is not followed by piecewise-linear layers only")
    code = int(net.codes[u])
    finish = (
        line_setup.finish_line_series
        if code in PIECEWISE_LINEAR
        else line_setup.finish_smooth_line_series
    )
    direct(finish)(
        u,
        units,
        radius,
        net,
        head,
        loss_code,
        setup.directions(u),
        tables.wt,
        *setup.bounds(u),
        setup.safety,
        coef,
        ready,
    )
