"""The kernel-ready arrays of one network evaluated on one batch.

A :class:`Workspace` is built from values that are already validated; it runs
the forward pass once and keeps every pre-activation and activation, which the
loss, the backward pass, the checker and the diagnostics all read.
"""

import functools

import numpy as np

from . import _passes
from ._packing import Packing
from .kernels import dense, tables
from .kernels.line_series import DEGREE
from .kernels.losses import BINARY_CROSS_ENTROPY
from .kernels.structures import Head, Network


@functools.lru_cache(maxsize=16)
def _layout(sizes, codes, act_params, batch):
    """Return the arrays that describe a network's layers, laid out for a batch.

    ``act_params`` as :func:`_exactly` writes them. Returns
    ``(sizes, codes, act_params, w_off, b_off, node_off)`` as
    :class:`~fastgrad.kernels.structures.Network` holds them, built once per
    network shape and batch size: every workspace of the same shape shares
    them, and nothing writes to them.
    """
    packing = Packing(sizes)
    n_layers = len(sizes) - 1
    w_off = np.zeros(n_layers + 1, dtype=np.int64)
    b_off = np.zeros(n_layers + 1, dtype=np.int64)
    for u in range(1, n_layers + 1):
        w_off[u] = packing.offsets[f"W{u}"]
        b_off[u] = packing.offsets[f"b{u}"]
    sizes = np.asarray(sizes, dtype=np.int64)
    node_off = np.concatenate(([0], np.cumsum(sizes) * batch)).astype(np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    act_params = np.array([float.fromhex(p) for p in act_params], dtype=np.float64)
    return sizes, codes, act_params, w_off, b_off, node_off


def _exactly(values):
    """Key floats by their bits (``0.0`` and ``-0.0`` compare equal but are not the same)."""
    return tuple(float(v).hex() for v in values)


_EXACT = {}
"""``(values, key)`` by the id of a network's activation parameters (a tuple, kept with
its key so that the id stays its own): the key of a network's next check without
writing its floats out again."""


def _exact_key(values):
    """Return :func:`_exactly` of a tuple of floats, kept per tuple object."""
    if type(values) is not tuple:  # only an immutable sequence keeps its key
        return _exactly(values)
    found = _EXACT.get(id(values))
    if found is not None and found[0] is values:
        return found[1]
    key = _exactly(values)
    if len(_EXACT) >= 16:
        _EXACT.clear()
    _EXACT[id(values)] = (values, key)
    return key


_UNPACKED = np.empty(0)
"""The ``theta`` of the passes' :class:`Network` while the parameters are the user's arrays."""


class Workspace:
    """Flat arrays of a network, its parameters and a batch, after a forward pass.

    Parameters
    ----------
    net : MLP
        The network (sizes, activation codes, loss code, l2, dropout).
    theta : ndarray or None
        Flat float64 parameters in the network's packing, or None with ``layers``.
    inputs : ndarray
        ``(batch, n_in)`` float64 inputs, copied into the activations' first
        block (:attr:`inputs` is the copy), unless ``copy_inputs`` is false.
    targets : ndarray
        ``(batch, n_out)`` float64 dense targets.
    dropout : bool, default True
        Apply the network's fixed dropout masks (off for predictions).
    masks : list of ndarray, optional
        The multipliers (0 or ``1 / (1 - p)``) of each hidden layer, ``(batch,
        n_l)``, in place of the network's own masks.
    layers : tuple, optional
        The parameters as :meth:`~fastgrad._packing.Packing.layers` gives
        them (the user's arrays, validated, not copied), in place of
        ``theta``: the passes read them where they are, and the flat
        :attr:`theta` that the checker's kernels take is packed only when
        first asked for.
    copy_inputs : bool, default True
        False: C-contiguous float64 ``inputs`` are not copied; the passes read
        them where they are (:attr:`inputs` is the caller's array) and the
        first block of :attr:`acts` is left unwritten (a tiny network's,
        :func:`fastgrad._passes.tiny`, are copied all the same: its one-call
        passes read them there). Only for a workspace
        whose own methods alone read it (``net.loss``, ``net.gradients``,
        ``net.predict``): the copy adds the batch once more to what the
        passes keep in cache.
    buffers : ndarray, optional
        A float64 ``(3, batch * sum(sizes))`` array to hold the activations,
        pre-activations and masks (:attr:`buffers`), overwritten here;
        allocated when omitted or of another shape.
    packed : ndarray, optional
        With ``layers``: a flat float64 copy of them in the network's
        packing, already made by the caller, which :attr:`theta` then is
        when first asked for (instead of packing them again).
    blocks : Blocks, optional
        The per-layer views of ``buffers`` made by the workspace that used
        them last (:attr:`blocks`); made here when omitted or not theirs.
    clean : bool, default False
        Whether ``buffers`` hold what the passes of a workspace that applied
        no mask (:attr:`masked` false) left in them: masks all ones, the
        input's pre-activations and the logits' activations zero, which are
        then not written again (nothing else is read before it is written).

    Attributes
    ----------
    network : Network
        The flat arrays as the kernels take them
        (:class:`~fastgrad.kernels.structures.Network`), built here only.
    """

    def __init__(
        self,
        net,
        theta,
        inputs,
        targets,
        dropout=True,
        masks=None,
        layers=None,
        buffers=None,
        clean=False,
        copy_inputs=True,
        blocks=None,
        packed=None,
    ):
        if (theta is None) == (layers is None):
            raise TypeError("a Workspace takes theta or layers, one of the two")
        self.net = net
        self._theta = theta
        self._layers = layers
        self._packed = packed
        self._probabilities = None
        self._network = None  # the last Network built (see _arrays)
        self.targets = targets
        self.batch = inputs.shape[0]
        params = _exact_key(net.activation_parameters)
        (self.sizes, self.codes, self.act_params, self.w_off, self.b_off, self.node_off) = _layout(
            net.sizes, net.activation_codes, params, self.batch
        )
        self.loss_code = net.loss_code
        self.l2 = float(net.l2)
        self.scale = net.data_scale(self.batch)
        n_layers = len(net.sizes) - 1
        total = int(self.node_off[-1])
        # one allocation for the three per-unit buffers. The forward pass writes every block
        # but the input's pre-activations (none) and the logits' activations (the loss's):
        # only those are zeroed here
        if buffers is None or buffers.shape != (3, total):
            buffers, clean = np.empty((3, total)), False
        self.buffers = buffers
        if blocks is None or not blocks.fits(buffers, self.node_off):
            blocks = _passes.Blocks(buffers, self.node_off, self.sizes)
        self._blocks = blocks
        self.acts, self.pre, self.masks = blocks.rows
        if not clean:
            self.masks[:] = 1.0
            blocks.acts[n_layers][:] = 0.0
            blocks.pre[0][:] = 0.0
        self._inputs = None  # the caller's inputs, read by the passes in place of the copy
        self.tiny = _passes.tiny(self.batch, net.n_params)
        # a tiny network's passes read the inputs in the activations' first block: the copy
        # is a few hundred numbers
        if copy_inputs or self.tiny or inputs.dtype != np.float64 or not inputs.flags.c_contiguous:
            self.inputs = blocks.acts[0]
            self.inputs[:] = inputs
        else:
            self.inputs = self._inputs = inputs
        if masks is None and dropout and any(net.dropout):
            masks = net.dropout_masks(self.batch)
        self.masked = bool(dropout and masks is not None)
        if self.masked:
            for u, mask in enumerate(masks, start=1):
                self.block(self.masks, u)[:] = mask
        if self.tiny:  # one compiled call, on the packed parameters
            _passes.forward_pass(self.network)
        else:
            _passes.forward(self._pass_arrays(), self.layers, self._inputs, blocks)

    @property
    def theta(self):
        """The flat float64 parameters in the network's packing (packed on first use)."""
        if self._theta is None:
            if self._packed is not None:
                self._theta = self._packed
            else:
                # W1 row-major, b1, W2, ...: the packing's order, each copied once
                parts = [part.reshape(-1) for pair in self._layers[1:] for part in pair]
                self._theta = np.concatenate(parts)
            self._layers = self._packed = None
        return self._theta

    @property
    def layers(self):
        """``layers[u] = (W_u, b_u)``, ``(n_out, n_in)`` and ``(n_out,)`` (``layers[0]`` None).

        The user's arrays until :attr:`theta` is packed, views of it after.
        """
        if self._layers is not None:
            return self._layers
        packing, theta = self.net.packing, self._theta
        return (None,) + tuple(
            (
                theta[packing.slice(f"W{u}")].reshape(packing.shapes[f"W{u}"]),
                theta[packing.slice(f"b{u}")],
            )
            for u in range(1, len(self.sizes))
        )

    def __getstate__(self):
        # a copy (pickled for a cluster's workers) carries the flat parameters and the
        # per-unit arrays once each (not the user's arrays, not the buffer they are views of)
        state = dict(vars(self))
        state["_theta"] = self.theta
        state["_layers"] = state["_packed"] = None
        state["buffers"] = None
        state["_blocks"] = None  # views of this process's buffers: made again from the copies
        state["_network"] = None  # holds them too; built again from the copies
        return state

    @property
    def blocks(self):
        """Per node layer, views of :attr:`acts`, :attr:`pre`, :attr:`masks` (a Blocks)."""
        if self._blocks is None:
            rows = (self.acts, self.pre, self.masks)
            self._blocks = _passes.Blocks(rows, self.node_off, self.sizes)
        return self._blocks

    def _pass_arrays(self):
        """Return the passes' :class:`Network` (its ``theta`` unread while layers are given)."""
        return self._arrays(self._theta if self._theta is not None else _UNPACKED)

    @property
    def network(self):
        """The flat arrays as the kernels take them, built from the attributes.

        A :class:`~fastgrad.kernels.structures.Network`; built here only, on
        demand, and kept while ``theta`` is the same array (the passes and the
        kernels of one check ask for it several times). A copy made by
        unpickling builds its own from the arrays it received.
        """
        return self._arrays(self.theta)

    def _arrays(self, theta):
        # a check asks for it several times with the same theta (the passes, the kernels):
        # the arrays are set with the workspace (or by unpickling, which drops the last one)
        network = self._network
        if network is not None and network.theta is theta:
            return network
        network = self._network = Network(  # by position, in the order of its fields
            theta,
            self.w_off,
            self.b_off,
            self.sizes,
            self.codes,
            self.act_params,
            self.masks,
            self.node_off,
            self.acts,
            self.pre,
        )
        return network

    def block(self, buffer, u):
        """Return node layer ``u``'s ``(batch, sizes[u])`` view of a per-unit buffer."""
        return buffer[self.node_off[u] : self.node_off[u + 1]].reshape(self.batch, self.sizes[u])

    @property
    def logits(self):
        """The output layer's pre-activations, ``(batch, n_out)``."""
        return self.blocks.pre[-1]

    def outputs(self):
        """Return the output function of the logits (identity, sigmoid or softmax)."""
        out = np.empty((self.batch, self.sizes[-1]))
        dense.output_batch(self.pre, self.node_off, self.sizes, self.loss_code, out)
        return out

    def probabilities(self):
        """Return :meth:`outputs`, computed once: an array the caller must not write to.

        The loss side of the kernels (:meth:`head`) and the gradient's scale
        both read it; the logits do not change after the forward pass.
        """
        if self._probabilities is None:
            self._probabilities = self.outputs()
        return self._probabilities

    def head(self):
        """Return the loss side of the batch as the kernels take it.

        A :class:`~fastgrad.kernels.structures.Head`: output probabilities,
        targets and, for binary cross-entropy, the Bernoulli cumulants of
        every output (a placeholder of zeros for the other losses).
        """
        if self.loss_code == BINARY_CROSS_ENTROPY:
            bernoulli = np.zeros((self.batch, self.sizes[-1], DEGREE + 1))
            tables.bernoulli_table(self.logits, bernoulli)
        else:
            bernoulli = np.zeros((1, 1, DEGREE + 1))
        return Head(self.probabilities(), self.targets, bernoulli)  # prob, targets, bernoulli

    def sample_losses(self):
        """Return each sample's loss, without the L2 term."""
        out = np.empty(self.batch)
        dense.sample_losses(self.pre, self.node_off, self.sizes, self.targets, self.loss_code, out)
        return out

    def l2_term(self):
        """Return ``l2 / (2m) * sum ||W||^2``."""
        if self.l2 == 0.0:
            return 0.0
        total = 0.0
        for weight, _ in self.layers[1:]:
            # one row-major pass per weight, as on the flat vector, whatever the user's layout
            total = dense.add_squares(np.ascontiguousarray(weight).reshape(-1), total)
        return self.l2 / (2.0 * self.batch) * total

    def loss(self):
        """Return the objective ``J``: the data term in the network's convention plus L2."""
        data = np.add.reduce(self.sample_losses()) / self.batch  # ndarray.sum's own reduction
        if self.scale != 1.0:
            data *= self.scale
        return float(data + self.l2_term())

    def gradient(self):
        """Return the gradient of ``J`` as a new flat vector laid out like ``theta``.

        The kernel computes the course's convention; another convention's
        factor multiplies the data term only, and the L2 term is added after.
        """
        grad = np.empty(self.net.packing.size)
        l2 = self.l2 if self.scale == 1.0 else 0.0
        if self.tiny:
            _passes.backward_pass(self.network, self.targets, self.loss_code, l2, grad)
        else:
            _passes.backward(
                self._pass_arrays(),
                self.targets,
                self.loss_code,
                l2,
                grad,
                self.layers,
                self._inputs,
                self.blocks,
            )
        if self.scale != 1.0:
            grad *= self.scale
            if self.l2:
                layers = self.layers
                for u in range(1, len(self.sizes)):
                    weight = layers[u][0]
                    part = grad[self.net.packing.slice(f"W{u}")].reshape(weight.shape)
                    part += self.l2 / self.batch * weight
        return grad
