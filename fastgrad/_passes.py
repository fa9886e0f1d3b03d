"""Passes of a dense network with their matrix products through BLAS.

The forward and backward passes, and the perturbed passes of a directional
check (:func:`directional_differences`).

Each layer's product runs in numpy's matrix multiply (the machine's BLAS,
tuned for every cache and vector width); what is elementwise around it (the
bias and the activation, the activation's derivative, the loss and its
gradient) runs in the compiled kernels of :mod:`fastgrad.kernels.dense`. The
arrays are those of a :class:`~fastgrad.kernels.structures.Network`, written
in place: no per-layer buffers beyond two of ``batch x widest layer`` for the
backward pass.

BLAS results do not depend on numba's threads; BLAS's own threads are capped
at numba's for the duration of a pass where ``threadpoolctl`` is installed
(:func:`blas_threads`), so that ``fastgrad.check(..., threads=1)`` runs on one
core throughout.
"""

import contextlib
import functools

import numba
import numpy as np

from .kernels import dense, directional
from .kernels._jit import direct


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """Return threadpoolctl's controller of the loaded BLAS, or None without threadpoolctl.

    Selected once: finding the libraries and selecting among them costs more
    (about 10 us) than a small network's products.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController().select(user_api="blas")


SMALL_PRODUCT = 65536
"""Multiply-adds of a product below which BLAS runs on one thread anyway.

OpenBLAS's threshold for threading a product (``SMP_THRESHOLD_MIN``); below it,
capping BLAS's threads would cost more than the products themselves (about
0.1 ms per pass, more than the whole check of a small network).
"""


TINY_PASSES = 65536
"""Batch times parameters up to which each pass runs as one compiled call.

A tiny network's passes are call overhead: a BLAS product and a compiled
elementwise step per layer, each about a microsecond to call, around a few
hundred multiply-adds. Up to this size :func:`tiny` networks run
:func:`~fastgrad.kernels.dense.forward_pass` and
:func:`~fastgrad.kernels.dense.backward_pass` instead, their products as
plain loops in a fixed order (the same bits for any thread count; BLAS's
may differ from them in the last place). Measured warm on one thread
(``net.gradients``, both passes): the course network at batch 3 (141) 37
against 60 us, 64-32-16-10 at batch 16 (44448) 57 against 69 us, even near
340000, BLAS ahead past it (256-64-32-10 at batch 32: 285 against 425 us).
The bound keeps a margin, and stays where BLAS would not thread a product
anyway (:data:`SMALL_PRODUCT`).
"""


def tiny(batch, n_params):
    """Whether ``n_params`` parameters on ``batch`` samples run each pass in one call."""
    return batch * n_params <= TINY_PASSES


forward_pass = direct(dense.forward_pass)
backward_pass = direct(dense.backward_pass)


def blas_threads(limit=None, work=None):
    """Return a context that caps BLAS's threads at ``limit`` (numba's threads by default).

    ``work`` is the largest product's multiply-adds in the pass. A no-op
    without ``threadpoolctl``, when ``work`` is below :data:`SMALL_PRODUCT`,
    or when BLAS already uses no more threads than ``limit``. Without the
    cap, BLAS keeps its own thread count (all cores by default): the passes
    call BLAS and numba's parallel kernels one after the other, never
    nested, so the two pools do not run at once.
    """
    if work is not None and work < SMALL_PRODUCT:
        return contextlib.nullcontext()
    controller = _blas_controller()
    if controller is None:
        return contextlib.nullcontext()
    limit = numba.get_num_threads() if limit is None else int(limit)
    # each library's own count, asked directly: info() builds a dict per library
    if all(library.num_threads <= limit for library in controller.lib_controllers):
        return contextlib.nullcontext()
    return controller.limit(limits=limit)


def _weight(net, u, layers=None):
    if layers is not None:
        return layers[u][0]
    n_out, n_in = net.sizes[u], net.sizes[u - 1]
    return net.theta[net.w_off[u] : net.w_off[u] + n_out * n_in].reshape(n_out, n_in)


def _largest_product(net, rows, first=1):
    """Multiply-adds of the largest ``(rows, n_{u-1}) x (n_{u-1}, n_u)`` product, from ``first``."""
    sizes = net.sizes.tolist()
    return rows * max(a * b for a, b in zip(sizes[first - 1 : -1], sizes[first:], strict=True))


def _block(buffer, net, u):
    start, stop = net.node_off[u], net.node_off[u + 1]
    return buffer[start:stop].reshape(-1, net.sizes[u])


class _Layout:
    """A network's offsets and sizes as Python ints, for slicing in a pass.

    Built once per network shape and batch (:func:`_layout`): indexing int64
    arrays gives numpy scalars, which slice and reshape several times slower
    than ints, and a small network's pass slices a dozen times.
    """

    def __init__(self, sizes, node_off, w_off, b_off, codes):
        self.sizes = sizes
        self.node_off = node_off
        self.w_off = w_off
        self.b_off = b_off
        self.codes = codes
        self.n_layers = len(sizes) - 1
        self.batch = node_off[1] // sizes[0]
        self.widest = max(sizes[1:])
        self.work = self.batch * max(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))

    def block(self, buffer, u):
        """Node layer ``u``'s ``(batch, sizes[u])`` view of a per-unit buffer."""
        return buffer[self.node_off[u] : self.node_off[u + 1]].reshape(self.batch, self.sizes[u])

    def weight(self, theta, u, layers):
        """``W_u``: ``layers[u][0]`` when given, else its ``(n_out, n_in)`` view of ``theta``."""
        if layers is not None:
            return layers[u][0]
        start = self.w_off[u]
        n_out, n_in = self.sizes[u], self.sizes[u - 1]
        return theta[start : start + n_out * n_in].reshape(n_out, n_in)

    def bias(self, theta, u, layers):
        """``b_u``: ``layers[u][1]`` when given, else its view of ``theta``."""
        if layers is not None:
            return layers[u][1]
        return theta[self.b_off[u] : self.b_off[u] + self.sizes[u]]


class Blocks:
    """Every node layer's ``(batch, sizes[u])`` view of a workspace's three per-unit buffers.

    Made once per buffer (a network's next call reuses its buffers, and these
    with them): a small network's check slices and reshapes a block two dozen
    times, about half a microsecond each.

    Parameters
    ----------
    buffers : ndarray or tuple of ndarray
        ``(3, batch * sum(sizes))``: activations, pre-activations, masks (or
        those three rows).
    node_off, sizes : int64 ndarray
        The network's layer offsets (for this batch) and sizes.

    Attributes
    ----------
    rows : tuple of ndarray
        ``(acts, pre, masks)``, the rows of ``buffers``.
    acts, pre, masks : tuple of ndarray
        ``acts[u]`` is node layer ``u``'s block of ``rows[0]``, and so on.
    deltas : tuple of ndarray
        The backward pass's ``dJ/dZ_u`` of every layer, ``(batch, sizes[u])``
        views of one working array of ``2 x batch x widest layer`` (two layers
        in a row never share memory), made on first use.
    """

    __slots__ = ("buffers", "node_off", "rows", "acts", "pre", "masks", "_widths", "_deltas")

    def __init__(self, buffers, node_off, sizes):
        self.buffers = buffers
        self.node_off = node_off
        self.rows = tuple(buffers)
        offsets, widths = node_off.tolist(), sizes.tolist()
        batch = offsets[1] // widths[0]
        self._widths = (batch, widths)
        self._deltas = None
        self.acts, self.pre, self.masks = (
            tuple(
                row[offsets[u] : offsets[u + 1]].reshape(batch, width)
                for u, width in enumerate(widths)
            )
            for row in self.rows
        )

    @property
    def deltas(self):
        if self._deltas is None:
            self._deltas = _delta_views(*self._widths)
        return self._deltas

    def fits(self, buffers, node_off):
        """Whether these are the views of ``buffers`` laid out by ``node_off``."""
        return self.buffers is buffers and self.node_off is node_off


@functools.lru_cache(maxsize=16)
def _cached_layout(sizes, node_off, w_off, b_off, codes):
    return _Layout(sizes, node_off, w_off, b_off, codes)


_BY_ARRAYS = {}
"""``(arrays, layout)`` by the ids of a Network's shape arrays: a workspace's come from a
cache of its own (one set per network shape and batch), so a pass usually finds them here
without reading them. The arrays are kept with their layout, so an id stays theirs."""


def _layout(net):
    """Return the :class:`_Layout` of a :class:`~fastgrad.kernels.structures.Network`."""
    arrays = (net.sizes, net.node_off, net.w_off, net.b_off, net.codes)
    key = tuple(map(id, arrays))
    found = _BY_ARRAYS.get(key)
    if found is not None:
        return found[1]
    # the activation parameters are read in each pass, as floats (they are not in the key)
    layout = _cached_layout(*(tuple(array.tolist()) for array in arrays))
    if len(_BY_ARRAYS) >= 16:
        _BY_ARRAYS.clear()
    _BY_ARRAYS[key] = (arrays, layout)
    return layout


_UNCAPPED = contextlib.nullcontext()
"""The context of a pass whose products BLAS runs on one thread anyway (reusable)."""


def _threads_for(shape):
    """Return :func:`blas_threads` for a pass over ``shape``'s layers (no call when small)."""
    return _UNCAPPED if shape.work < SMALL_PRODUCT else blas_threads(work=shape.work)


def forward(net, layers=None, inputs=None, blocks=None):
    """Fill ``net.pre`` with every ``Z_u`` and ``net.acts`` with every hidden ``A_u``.

    ``net`` is a :class:`~fastgrad.kernels.structures.Network` whose ``acts``
    block 0 holds the input batch. ``Z_u = A_{u-1} W_u^T + b_u`` (one matrix
    product, then the bias), ``A_u = phi_u(Z_u) M_u``. The weights and
    biases are ``net.theta``'s, or ``layers[u] = (W_u, b_u)`` when given
    (``net.theta`` is then not read). ``inputs``, when given, is ``A_0``
    (``(batch, n_0)``, C-contiguous) in place of ``acts`` block 0, which is
    then not read. ``blocks``, when given, are the :class:`Blocks` of
    ``net``'s buffers.
    """
    shape = _layout(net)
    n_layers = shape.n_layers
    act_params = net.act_params.tolist()
    if blocks is None:
        blocks = _blocks_of(net, shape)
    acts, pre, masks = blocks.acts, blocks.pre, blocks.masks
    with _threads_for(shape):
        for u in range(1, n_layers + 1):
            z = pre[u]
            a_in = inputs if u == 1 and inputs is not None else acts[u - 1]
            if layers is not None:
                weight, bias = layers[u]
            else:
                weight, bias = shape.weight(net.theta, u, None), shape.bias(net.theta, u, None)
            np.matmul(a_in, weight.T, out=z)
            dense.finish_layer(
                z,
                bias,
                masks[u],
                acts[u],
                shape.codes[u],
                act_params[u],
                u < n_layers,
            )


def _delta_views(batch, widths):
    """Return every layer's ``(batch, widths[u])`` view for the backward pass's deltas.

    Layer ``u`` takes half ``(L - u) % 2`` of one array of ``2 x batch x
    widest``: the delta of a layer and of the layer below it never overlap.
    """
    n_layers = len(widths) - 1
    widest = max(widths[1:])
    buffer = np.empty(2 * batch * widest)
    return (None,) + tuple(
        buffer[(n_layers - u) % 2 * batch * widest :][: batch * widths[u]].reshape(batch, widths[u])
        for u in range(1, n_layers + 1)
    )


def _blocks_of(net, shape):
    """Return :class:`Blocks`-like views of a :class:`Network` made without its workspace."""
    views = _Views()
    views.acts, views.pre, views.masks = (
        [shape.block(row, u) for u in range(shape.n_layers + 1)]
        for row in (net.acts, net.pre, net.masks)
    )
    views.deltas = _delta_views(shape.batch, shape.sizes)
    return views


class _Views:
    """The per-layer views of :class:`Blocks`, made for one pass."""

    __slots__ = ("acts", "pre", "masks", "deltas")


def backward(net, targets, loss_code, l2, grad, layers=None, inputs=None, blocks=None):
    """Write the gradient of ``J`` into ``grad`` (laid out like ``net.theta``).

    ``J = (1/m) sum_b loss_b + l2 / (2m) sum_u ||W_u||^2`` with ``m`` the
    batch size; ``net`` must have been through :func:`forward`, and the
    weights and the inputs are read as there (``layers`` and ``inputs`` when
    given). With
    ``D_u = dJ/dZ_u``: ``dW_u = D_u^T A_{u-1} + (l2/m) W_u``, ``db_u = sum_b
    D_u``, ``D_{u-1} = (D_u W_u) M_{u-1} phi'(Z_{u-1})``. ``blocks`` as for
    :func:`forward`.
    """
    shape = _layout(net)
    if blocks is None:
        blocks = _blocks_of(net, shape)
    acts, pre, masks = blocks.acts, blocks.pre, blocks.masks
    sizes, w_off, b_off = shape.sizes, shape.w_off, shape.b_off
    n_layers = shape.n_layers
    act_params = net.act_params.tolist()
    batch = targets.shape[0]
    deltas = blocks.deltas
    delta = deltas[n_layers]
    # each layer's bias gradient (the column sums of its delta) is written with the delta
    bias_grad = grad[b_off[n_layers] : b_off[n_layers] + sizes[n_layers]]
    dense.output_delta(net.pre, net.node_off, net.sizes, targets, loss_code, delta, bias_grad)
    with _threads_for(shape):
        for u in range(n_layers, 0, -1):
            n_out, n_in = sizes[u], sizes[u - 1]
            weight = layers[u][0] if layers is not None else shape.weight(net.theta, u, None)
            d_weight = grad[w_off[u] : w_off[u] + n_out * n_in]
            a_in = inputs if u == 1 and inputs is not None else acts[u - 1]
            np.matmul(delta.T, a_in, out=d_weight.reshape(n_out, n_in))
            if l2:
                dense.add_scaled(d_weight, weight.ravel(), l2 / batch)
            if n_out == 1:
                # numpy sums a single column pairwise, which the bits of db_u always were
                np.add.reduce(delta, axis=0, out=grad[b_off[u] : b_off[u] + 1])
            if u > 1:
                below = deltas[u - 1]
                np.matmul(delta, weight, out=below)
                dense.through_activation(
                    below,
                    pre[u - 1],
                    masks[u - 1],
                    shape.codes[u - 1],
                    act_params[u - 1],
                    grad[b_off[u - 1] : b_off[u - 1] + n_in],
                )
                delta = below


def directional_differences(u, weight_dirs, bias_dirs, epsilon, net, head, loss_code, out, kinks):
    """Per-sample ``loss_b(theta + eps v_d) - loss_b(theta - eps v_d)`` for each direction.

    The layers before ``u`` are reused from the unperturbed pass; ``Z_u``
    moves by ``eps (A_{u-1} V_d^T + v_b)`` and the change is carried to the
    loss exactly, as differences from the unperturbed pass, for both signs of
    every direction and every sample at once: one matrix product per layer
    (BLAS) between the compiled elementwise steps of
    :mod:`fastgrad.kernels.directional`. No derivative formula is involved.

    Parameters
    ----------
    u : int
        Node layer produced by the perturbed tensors.
    weight_dirs : ndarray or None
        ``(k, sizes[u], sizes[u - 1])`` weight part of each direction, or
        ``None`` when the directions move the bias alone.
    bias_dirs : ndarray
        ``(k, sizes[u])`` bias part of each direction.
    epsilon : float
        Step.
    net : Network
        The network after its forward pass.
    head : Head
        Output probabilities and targets.
    loss_code : int
        Loss code.
    out : ndarray
        Output, ``(batch, k)``.
    kinks : int64 ndarray
        Output, ``(batch, k)``: evaluations (of 2) that crossed a kink.
    """
    sizes = net.sizes
    n_layers = sizes.shape[0] - 1
    k = bias_dirs.shape[0]
    batch = out.shape[0]
    columns = 2 * k
    rows = columns * batch
    widest = int(np.max(sizes[u:]))
    buffers = np.empty(2 * rows * widest)
    dz = buffers[: rows * sizes[u]].reshape(columns, batch, sizes[u])
    a_in = _block(net.acts, net, u - 1)
    crossed = np.zeros((columns, batch), dtype=np.int64)
    with blas_threads(work=_largest_product(net, rows, first=u)):
        for d in range(k):
            plus = dz[2 * d]
            if weight_dirs is None:
                plus[:] = bias_dirs[d]
            else:
                np.matmul(a_in, weight_dirs[d].T, out=plus)
                plus += bias_dirs[d]
            plus *= epsilon
            np.negative(plus, out=dz[2 * d + 1])
        for layer in range(u, n_layers):
            directional.through_activation(
                dz,
                _block(net.pre, net, layer),
                _block(net.masks, net, layer),
                net.codes[layer],
                net.act_params[layer],
                crossed,
            )
            n_next = sizes[layer + 1]
            half = (layer - u + 1) % 2
            moved = buffers[half * rows * widest :][: rows * n_next]
            np.matmul(
                dz.reshape(rows, sizes[layer]),
                _weight(net, layer + 1).T,
                out=moved.reshape(rows, n_next),
            )
            dz = moved.reshape(columns, batch, n_next)
    f_out = np.empty((columns, batch))
    logits = _block(net.pre, net, n_layers)
    directional.loss_changes(dz, logits, head.prob, head.targets, loss_code, f_out)
    np.subtract(f_out[0::2], f_out[1::2], out=out.T)
    kinks[:] = ((crossed[0::2] > 0).astype(np.int64) + (crossed[1::2] > 0)).T
