"""The dense network whose gradients fastgrad checks."""

import math
import numbers

import numpy as np

from ._conventions import check_reduction, check_weights, data_scale, formula
from ._data import prepare_inputs, prepare_targets
from ._dropout import keep_multipliers
from ._packing import Packing
from ._workspace import Workspace
from .kernels import activations as act
from .kernels import losses

HIDDEN_ACTIVATIONS = {
    "identity": act.IDENTITY,
    "relu": act.RELU,
    "leaky_relu": act.LEAKY_RELU,
    "tanh": act.TANH,
    "sigmoid": act.SIGMOID,
    "elu": act.ELU,
    "softplus": act.SOFTPLUS,
}

ACTIVATION_PARAMETERS = {
    "leaky_relu": ("slope", act.LEAKY_SLOPE),
    "elu": ("alpha", act.ELU_ALPHA),
    "softplus": ("beta", act.SOFTPLUS_BETA),
}
"""The hidden activations that take a parameter: its name and default.

leaky relu ``phi(z) = a z`` for ``z <= 0`` (``a`` the slope), elu ``alpha
(exp(z) - 1)`` for ``z <= 0``, softplus ``log(1 + exp(beta z)) / beta``:
torch's ``LeakyReLU(negative_slope)``, ``ELU(alpha)`` and ``Softplus(beta)``.
"""

OUTPUT_LOSSES = {
    "identity": ("mse", losses.MSE),
    "sigmoid": ("binary_cross_entropy", losses.BINARY_CROSS_ENTROPY),
    "softmax": ("cross_entropy", losses.CROSS_ENTROPY),
}


MAX_PARAMS = 2**63
"""Parameter counts must stay below this bound: offsets into theta are int64."""


def _finite(name, value):
    """Return ``value`` as a finite float, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return number


def _hidden_entry(entry):
    """Return ``(name, parameter)`` of one hidden entry, a name or a ``(name, parameter)`` pair.

    The parameter is a float for the activations of :data:`ACTIVATION_PARAMETERS`
    (their default when the entry is a plain name) and None for the others.
    """
    if isinstance(entry, str):
        name = _choice("hidden activation", entry, list(HIDDEN_ACTIVATIONS))
        return name, ACTIVATION_PARAMETERS[name][1] if name in ACTIVATION_PARAMETERS else None
    if not _is_pair(entry):
        raise ValueError(
            f"a hidden entry is an activation name or a (name, parameter) pair; got {entry!r}"
        )
    name = _choice("hidden activation", entry[0], list(HIDDEN_ACTIVATIONS))
    if name not in ACTIVATION_PARAMETERS:
        takes = ", ".join(f"{key} ({option})" for key, (option, _) in ACTIVATION_PARAMETERS.items())
        raise ValueError(
            f"hidden activation {name!r} takes no parameter; got {tuple(entry)!r}. Only {takes} do"
        )
    option, _ = ACTIVATION_PARAMETERS[name]
    value = entry[1]
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or (name == "softplus" and number <= 0.0):
        wanted = "a finite number > 0" if name == "softplus" else "a finite number"
        raise ValueError(f"hidden activation {name}: its {option} must be {wanted}; got {value!r}")
    return name, number


def _is_pair(entry):
    """Whether ``entry`` looks like ``(name, number)``."""
    return (
        isinstance(entry, (tuple, list))
        and len(entry) == 2
        and isinstance(entry[0], str)
        and isinstance(entry[1], numbers.Real)
    )


def _choice(kind, value, valid):
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; choose one of {', '.join(valid)}")
    return value


class MLP:
    """A fully connected network: sizes, activations, output, loss and regularization.

    The network holds no parameters: they are passed to every method as a dict
    ``{"W1": ..., "b1": ..., ...}`` with ``Wl`` of shape ``(n_out, n_in)``
    (``(n_in, n_out)`` with ``weights="in_out"``) and ``bl`` of shape
    ``(n_out,)``, ``(n_out, 1)`` or ``(1, n_out)``; gradients come back in the
    shapes given.

    The objective, with ``m`` the batch size, ``k`` the output units and ``z``
    the logits, is ``J = data term + l2 / (2m) sum_l ||W_l||_F^2`` where the
    data term depends on ``loss`` and ``reduction``:

    - mse: ``(1/m) sum_b 1/2 sum_k (z - y)^2`` (course), ``(1/(mk)) sum_b sum_k
      (z - y)^2`` (mean), ``sum_b sum_k (z - y)^2`` (sum);
    - binary_cross_entropy: ``(1/m) sum_b sum_k bce(z, y)`` (course),
      ``(1/(mk)) sum_b sum_k bce(z, y)`` (mean), ``sum_b sum_k bce(z, y)`` (sum);
    - cross_entropy: ``-(1/m) sum_b log softmax(z_b)[y_b]`` (course and mean),
      ``-sum_b log softmax(z_b)[y_b]`` (sum).

    ``"mean"`` and ``"sum"`` are torch's ``reduction`` of ``MSELoss``,
    ``BCEWithLogitsLoss`` and ``CrossEntropyLoss``.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first and output last, e.g. ``[784, 128, 10]``.
    hidden : str, (str, float) or sequence of them, default "relu"
        Activation of the hidden layers: one entry for all or one per hidden
        layer. An entry is a name (identity, relu, leaky_relu, tanh, sigmoid,
        elu, softplus) or a ``(name, parameter)`` pair for the three that take
        one: ``("leaky_relu", a)``, ``phi(z) = a z`` for ``z <= 0`` (default
        ``a = 0.01``; any finite ``a``); ``("elu", alpha)``, ``alpha (exp(z) -
        1)`` for ``z <= 0`` (default 1; any finite alpha); ``("softplus",
        beta)``, ``log(1 + exp(beta z)) / beta`` (default 1; finite, > 0).
        These are torch's ``LeakyReLU``, ``ELU`` and ``Softplus``. Leaky relu
        (slope other than 1) and elu (alpha other than 1) have a kink at 0.
    output : {"softmax", "sigmoid", "identity"}, default "softmax"
        Output function, computed together with the loss from the logits.
    loss : {"cross_entropy", "binary_cross_entropy", "mse"}, optional
        Loss paired with ``output`` (softmax with cross_entropy, sigmoid with
        binary_cross_entropy, identity with mse); inferred when omitted.
    l2 : float, default 0.0
        L2 penalty ``lambda``: ``J`` gains ``lambda / (2m) * sum_l ||W_l||_F^2``
        (weights only, ``m`` the batch size).
    dropout : float or sequence of float, optional
        Drop probability of the hidden layers (one for all or one per hidden
        layer), with inverted scaling by ``1 / (1 - p)``. The masks are drawn
        once from ``dropout_seed`` for a given batch size and held fixed, so
        ``J`` stays a deterministic function that can be checked.
    dropout_seed : int, default 0
        Seed of the dropout masks (your own masks can be passed instead:
        ``dropout_masks=`` of :meth:`loss`, :meth:`gradients` and
        :func:`fastgrad.check`).
    reduction : {"course", "mean", "sum"}, default "course"
        How the per-element losses are reduced to ``J`` (table above).
    weights : {"out_in", "in_out"}, default "out_in"
        Whether ``Wl`` is stored ``(n_out, n_in)`` (``z = W x``, torch's
        ``nn.Linear``) or ``(n_in, n_out)`` (``z = x W``); gradients ``dWl``
        are taken and returned in the same layout.

    Examples
    --------
    >>> import numpy as np
    >>> import fastgrad as fg
    >>> net = fg.MLP([4, 5, 3], hidden="tanh")
    >>> params = net.init("xavier_normal", seed=0)
    >>> X = np.random.default_rng(0).normal(size=(8, 4))
    >>> labels = np.arange(8) % 3
    >>> round(net.loss(params, X, labels), 6) > 0
    True
    >>> sorted(net.gradients(params, X, labels))
    ['dW1', 'dW2', 'db1', 'db2']
    """

    def __init__(
        self,
        sizes,
        hidden="relu",
        output="softmax",
        loss=None,
        l2=0.0,
        dropout=None,
        dropout_seed=0,
        reduction="course",
        weights="out_in",
    ):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
            raise TypeError(f"sizes must be a sequence of layer widths; got {sizes!r}")
        if isinstance(sizes, np.ndarray) and sizes.ndim != 1:
            raise TypeError(f"sizes must be a sequence of layer widths; got {sizes!r}")
        if len(sizes) < 2:
            raise ValueError(
                f"sizes needs at least an input and an output layer; got {list(sizes)}"
            )
        for size in sizes:
            if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
                raise ValueError(f"layer sizes must be positive integers; got {list(sizes)}")
        self.sizes = tuple(int(s) for s in sizes)
        count = sum(
            n_out * (n_in + 1) for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        )
        if count >= MAX_PARAMS:
            raise ValueError(
                f"sizes {list(self.sizes)} give {count:,} parameters; at most "
                f"{MAX_PARAMS - 1:,} can be indexed"
            )
        n_hidden = len(self.sizes) - 2

        if isinstance(hidden, str) or _is_pair(hidden):
            entries = [hidden] * n_hidden
        elif isinstance(hidden, (list, tuple)):
            entries = list(hidden)
        else:
            raise TypeError(
                "hidden must be an activation name, a (name, parameter) pair or a list of "
                f"them; got {hidden!r}"
            )
        if len(entries) != n_hidden:
            raise ValueError(
                f"hidden names {len(entries)} activation(s) for {n_hidden} hidden layer(s)"
            )
        parsed = [_hidden_entry(entry) for entry in entries]
        self.hidden = tuple(name for name, _ in parsed)
        self.hidden_parameters = tuple(param for _, param in parsed)

        self.output = _choice("output", output, list(OUTPUT_LOSSES))
        paired = OUTPUT_LOSSES[self.output][0]
        if loss is None:
            loss = paired
        _choice("loss", loss, [pair[0] for pair in OUTPUT_LOSSES.values()])
        if loss != paired:
            pairs = ", ".join(f"{out}+{pair[0]}" for out, pair in OUTPUT_LOSSES.items())
            raise ValueError(
                f"output {self.output!r} cannot be paired with loss {loss!r}; valid pairs: {pairs}"
            )
        self.loss_name = loss
        self.loss_code = OUTPUT_LOSSES[self.output][1]

        self.l2 = _finite("l2", l2)
        if self.l2 < 0:
            raise ValueError(f"l2 must be a finite number >= 0; got {l2!r}")

        if isinstance(dropout, np.ndarray) and dropout.ndim == 0:
            dropout = float(dropout)
        rates = [0.0 if dropout is None else dropout] * n_hidden
        if dropout is not None and not isinstance(dropout, numbers.Real):
            if not isinstance(dropout, (list, tuple, np.ndarray)):
                raise TypeError(f"dropout must be a rate or a list of rates; got {dropout!r}")
            rates = list(dropout)
            if len(rates) != n_hidden:
                raise ValueError(
                    f"dropout names {len(rates)} rate(s) for {n_hidden} hidden layer(s)"
                )
        # a single rate is checked itself, so that it is refused without hidden layers too
        for rate in [dropout] if isinstance(dropout, numbers.Real) else rates:
            if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
                raise ValueError(f"dropout rates must lie in [0, 1); got {dropout!r}")
        self.dropout = tuple(float(rate) for rate in rates)
        if not isinstance(dropout_seed, numbers.Integral) or isinstance(dropout_seed, bool):
            raise TypeError(f"dropout_seed must be an integer; got {dropout_seed!r}")
        self.dropout_seed = int(dropout_seed)

        self._spares = []  # per-unit buffers of a finished call, for the next one to reuse
        self._scratches = []  # a finished check's working arrays (fastgrad._scratch)
        self.reduction = check_reduction(reduction)
        self.weights = check_weights(weights)
        self.packing = Packing(self.sizes, weights=self.weights)
        self.activation_codes = (
            act.IDENTITY,
            *(HIDDEN_ACTIVATIONS[n] for n in self.hidden),
            act.IDENTITY,
        )
        self.activation_parameters = (
            0.0,
            *(0.0 if p is None else p for p in self.hidden_parameters),
            0.0,
        )

    def __getstate__(self):
        # the last calls' working arrays are not part of the network: a copy starts without
        state = dict(vars(self))
        del state["_spares"], state["_scratches"]
        return state

    def __setstate__(self, state):
        # a network pickled by a version that kept no working arrays loads too
        vars(self).update(state)
        self._spares = []
        self._scratches = []

    @property
    def hidden_entries(self):
        """The hidden activations as ``MLP`` takes them: a name, or ``(name, parameter)``.

        The pair only where the parameter is not the default, e.g. ``[("leaky_relu",
        0.2), "tanh"]``.
        """
        entries = []
        for name, param in zip(self.hidden, self.hidden_parameters, strict=True):
            default = ACTIVATION_PARAMETERS.get(name, (None, None))[1]
            entries.append(name if param == default else (name, param))
        return entries

    def __repr__(self):
        entries = self.hidden_entries
        hidden = entries[0] if len(set(entries)) == 1 else entries
        extras = ""
        if self.l2:
            extras += f", l2={self.l2!r}"
        if any(self.dropout):
            extras += f", dropout={list(self.dropout)!r}"
        if self.reduction != "course":
            extras += f", reduction={self.reduction!r}"
        if self.weights != "out_in":
            extras += f", weights={self.weights!r}"
        return (
            f"MLP({list(self.sizes)}, hidden={hidden!r}, output={self.output!r}, "
            f"loss={self.loss_name!r}{extras})"
        )

    def options(self):
        """Return the keyword arguments that rebuild this network, ``MLP(**net.options())``."""
        return {
            "sizes": list(self.sizes),
            "hidden": self.hidden_entries,
            "output": self.output,
            "loss": self.loss_name,
            "l2": self.l2,
            "dropout": list(self.dropout),
            "dropout_seed": self.dropout_seed,
            "reduction": self.reduction,
            "weights": self.weights,
        }

    def replace(self, **changes):
        """Return a copy of the network with some constructor arguments changed."""
        return MLP(**{**self.options(), **changes})

    def data_scale(self, batch):
        """Return the factor from the course's data term to this network's (see the table)."""
        return data_scale(self.loss_name, self.reduction, batch, self.sizes[-1])

    def formula(self):
        """Return ``J`` written out in this network's convention."""
        return formula(self.loss_name, self.reduction, self.l2)

    @property
    def n_params(self):
        """Number of scalar parameters."""
        return self.packing.size

    @property
    def param_names(self):
        """Names of the parameter tensors, ``["W1", "b1", ...]``."""
        return list(self.packing.names)

    def init(self, method="he_normal", seed=None, **options):
        """Draw parameters: weights from an initializer, biases zero.

        Parameters
        ----------
        method : str, default "he_normal"
            Any name in :data:`fastgrad.init.INITIALIZERS`.
        seed : int or numpy.random.Generator, optional
            Seed, for reproducible parameters.
        **options
            Passed to the initializer (e.g. ``mode``, ``nonlinearity``, ``gain``).
            He/Kaiming initializers given neither ``a`` nor ``nonlinearity``
            draw a weight followed by a leaky relu with that layer's slope
            ``a``, gain ``sqrt(2 / (1 + a^2))``; the others with the relu gain.

        Returns
        -------
        dict
            ``{"W1": ..., "b1": ..., ...}``, float64, biases of shape ``(n,)``.
            With ``weights="in_out"`` each weight is drawn ``(n_out, n_in)``
            (the fans of the initializer) and returned transposed.
        """
        from . import init as initializers

        draw = initializers.get(method)
        rectifier = method in initializers.KAIMING and not {"a", "nonlinearity"} & set(options)
        leaky = [name == "leaky_relu" for name in self.hidden] + [False]
        rng = seed
        if not isinstance(seed, np.random.Generator):
            wanted = "None, a non-negative integer or a numpy.random.Generator"
            if seed is not None and (
                isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
            ):
                raise TypeError(f"seed must be {wanted}; got {seed!r}")
            if seed is not None and seed < 0:
                raise ValueError(f"seed must be {wanted}; got {seed!r}")
            rng = np.random.default_rng(None if seed is None else int(seed))
        params = {}
        for name in self.packing.names:
            shape = self.packing.shapes[name]
            if name.startswith("W") and self.weights == "in_out":
                shape = shape[::-1]
            if name.startswith("W"):
                layer = int(name[1:])
                extra = {}
                # He et al.'s gain is that of the rectifier after the layer
                if rectifier and leaky[layer - 1]:
                    extra = {"a": self.hidden_parameters[layer - 1]}
                drawn = draw(self.packing.shapes[name], rng=rng, **options, **extra)
                params[name] = np.ascontiguousarray(drawn.T) if self.weights == "in_out" else drawn
            else:
                params[name] = np.zeros(shape)
        return params

    def dropout_masks(self, batch, scaled=True):
        """Return the fixed dropout masks of each hidden layer for a batch size.

        Parameters
        ----------
        batch : int
            Number of samples.
        scaled : bool, default True
            ``True``: the multipliers the network applies, ``0`` (dropped) or
            ``1 / (1 - p)`` (kept). ``False``: the 0/1 keep-masks, the form
            ``dropout_masks=`` of :meth:`loss`, :meth:`gradients` and
            :func:`fastgrad.check` takes.

        Returns
        -------
        list of ndarray
            One ``(batch, n_units)`` array per hidden layer (rows layout); all
            ones where ``p == 0``.
        """
        if not any(self.dropout):
            return [np.ones((batch, width)) for width in self.sizes[1:-1]]
        rng = np.random.default_rng(self.dropout_seed)
        masks = []
        for rate, width in zip(self.dropout, self.sizes[1:-1], strict=True):
            if rate == 0.0:
                masks.append(np.ones((batch, width)))
            else:
                keep = rng.random((batch, width)) >= rate
                masks.append(keep / (1.0 - rate) if scaled else keep.astype(np.float64))
        return masks

    def _take_spare(self):
        """Return ``{"buffers": ..., "clean": ...}`` a finished call gave back (empty if none).

        :meth:`loss`, :meth:`gradients` and :meth:`predict` let go of their
        workspace before they return, so the next call can reuse its buffers:
        allocated afresh, they cost page faults each call, as much time as
        the passes of a small network. A buffer goes to one call at a time
        (``list.pop`` is atomic), whatever the threads.
        """
        try:
            return self._spares.pop()
        except IndexError:
            return {}

    def _give_back(self, work):
        """Keep ``work``'s buffers for the next call (one set is kept)."""
        if not self._spares:
            self._spares.append(
                {"buffers": work.buffers, "blocks": work.blocks, "clean": not work.masked}
            )

    def workspace(
        self,
        params,
        X,
        Y,
        layout="rows",
        dropout_masks=None,
        buffers=None,
        clean=False,
        copy_inputs=True,
        blocks=None,
    ):
        """Validate parameters and a batch and run the forward pass.

        ``dropout_masks`` are the user's own 0/1 keep-masks (see :meth:`loss`);
        ``buffers``, ``blocks``, ``clean`` and ``copy_inputs`` as
        :class:`~fastgrad._workspace.Workspace` takes them.

        Returns
        -------
        workspace : Workspace
            Kernel-ready arrays after the forward pass.
        bias_shapes : dict
            The shape each bias was given in.
        """
        layers, bias_shapes, packed = self.packing.layers_and_flat(params)
        inputs = prepare_inputs(X, self.sizes[0], layout, copy=False)
        targets = prepare_targets(Y, inputs.shape[0], self.sizes[-1], self.loss_name, layout)
        masks = None
        if dropout_masks is not None:
            masks = keep_multipliers(self, dropout_masks, inputs.shape[0], layout)
        work = Workspace(
            self,
            None,
            inputs,
            targets,
            masks=masks,
            layers=layers,
            buffers=buffers,
            clean=clean,
            copy_inputs=copy_inputs,
            blocks=blocks,
            packed=packed,
        )
        return work, bias_shapes

    def loss(self, params, X, Y, layout="rows", dropout_masks=None):
        """Return the objective ``J`` (data term plus the L2 term) on a batch.

        Parameters
        ----------
        params : dict
            ``{"W1": ..., "b1": ..., ...}``.
        X : array_like
            Inputs, ``(batch, n_in)``, or ``(n_in, batch)`` with ``layout="columns"``.
        Y : array_like
            Targets, ``(batch, n_out)`` (``(n_out, batch)`` with
            ``layout="columns"``), or integer labels ``(batch,)`` for
            cross-entropy.
        layout : {"rows", "columns"}, default "rows"
            Whether samples are the rows or the columns of ``X`` and ``Y``.
        dropout_masks : sequence of array_like, optional
            Your own dropout keep-masks, one per hidden layer, entries 0
            (dropped) or 1 (kept), shaped like that layer's activations:
            ``(batch, n_l)``, or ``(n_l, batch)`` with ``layout="columns"``.
            Kept units are scaled by ``1 / (1 - p)`` with ``p`` from
            ``dropout``; a layer with ``p = 0`` takes ``None`` or all ones.
            By default the masks are drawn from ``dropout_seed``.

        Returns
        -------
        float
        """
        spare = self._take_spare()
        work, _ = self.workspace(params, X, Y, layout, dropout_masks, copy_inputs=False, **spare)
        loss = work.loss()
        self._give_back(work)
        return loss

    def gradients(self, params, X, Y, layout="rows", dropout_masks=None):
        """Return the gradient of :meth:`loss` by fastgrad's own backpropagation.

        Parameters are as for :meth:`loss`.

        Returns
        -------
        dict
            ``{"dW1": ..., "db1": ..., ...}``, each in the shape of its parameter.
        """
        spare = self._take_spare()
        work, bias_shapes = self.workspace(
            params, X, Y, layout, dropout_masks, copy_inputs=False, **spare
        )
        grad = work.gradient()
        self._give_back(work)
        return self.packing.unpack(grad, bias_shapes, prefix="d")

    def predict(self, params, X, layout="rows"):
        """Return the network's output (after the output function) for inputs ``X``.

        Dropout is off: every unit is kept and none is rescaled.

        Returns
        -------
        ndarray
            ``(batch, n_out)``, or ``(n_out, batch)`` with ``layout="columns"``.
        """
        layers, _ = self.packing.layers(params)
        inputs = prepare_inputs(X, self.sizes[0], layout, copy=False)
        dummy = np.zeros((inputs.shape[0], self.sizes[-1]))
        spare = self._take_spare()
        work = Workspace(
            self, None, inputs, dummy, dropout=False, layers=layers, copy_inputs=False, **spare
        )
        out = work.outputs()
        self._give_back(work)
        return out if layout == "rows" else out.T
