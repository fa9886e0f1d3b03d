"""Networks from other libraries: a PyTorch ``nn.Sequential`` as an :class:`MLP`.

torch is optional (``pip install fastgrad[torch]``) and imported only when
these functions are called.
"""

from .mlp import MLP

__all__ = ["from_torch", "torch_gradients"]

_ACTIVATIONS = {
    "ReLU": "relu",
    "LeakyReLU": "leaky_relu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "ELU": "elu",
    "Softplus": "softplus",
    "Identity": "identity",
}

_LOSSES = {
    "CrossEntropyLoss": ("softmax", "cross_entropy"),
    "BCEWithLogitsLoss": ("sigmoid", "binary_cross_entropy"),
    "MSELoss": ("identity", "mse"),
}


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "from_torch and torch_gradients need PyTorch: pip install 'fastgrad[torch]' "
            "(on Linux, the CPU wheel: pip install torch --index-url "
            "https://download.pytorch.org/whl/cpu)"
        ) from None
    return torch


_PARAMETERS = {"LeakyReLU": "negative_slope", "ELU": "alpha", "Softplus": "beta"}
"""The option of each parametrized torch activation that is fastgrad's parameter."""


def _activation(module, where):
    """Return fastgrad's hidden entry of a torch activation module, refusing options it lacks.

    A name, or ``(name, parameter)`` for ``LeakyReLU``, ``ELU`` and ``Softplus``.
    """
    kind = type(module).__name__
    name = _ACTIVATIONS.get(kind)
    if name is None:
        dropout = (
            " (for dropout: MLP(..., dropout=p) and your forward pass's masks, "
            "fg.check(..., dropout_masks=[D1, ...]))"
            if "Dropout" in kind
            else ""
        )
        raise ValueError(
            f"{where} is {kind}, which fastgrad cannot express; supported: Linear and "
            f"{', '.join(_ACTIVATIONS)}{dropout}"
        )
    # torch's Softplus is x itself where beta x exceeds its threshold; at 20 that
    # differs by exp(-20) / beta
    if kind == "Softplus" and float(module.threshold) < 20.0:
        raise ValueError(
            f"{where} is Softplus(threshold={module.threshold!r}), which returns x itself "
            "above the threshold; fastgrad's softplus never does, and agrees with torch's "
            "to exp(-threshold) only for threshold >= 20 (the default)"
        )
    if kind not in _PARAMETERS:
        return name
    option = _PARAMETERS[kind]
    entry = (name, float(getattr(module, option)))
    try:
        MLP([1, 1, 1], hidden=[entry])
    except ValueError as exc:
        raise ValueError(f"{where} is {kind}({option}={entry[1]!r}): {exc}") from None
    return entry


def _flattened(model, where, torch):
    """Yield ``(where, module)`` of a Sequential's modules, nested Sequentials opened."""
    for index, module in enumerate(model):
        if isinstance(module, torch.nn.Sequential):
            yield from _flattened(module, f"{where}[{index}]", torch)
        else:
            yield f"{where}[{index}]", module


def _layers(model):
    """Return ``(linears, hidden activation names)`` of an ``nn.Sequential``."""
    torch = _torch()
    if not isinstance(model, torch.nn.Sequential):
        raise TypeError(
            f"model must be a torch.nn.Sequential of Linear and activation modules; "
            f"got {type(model).__name__}"
        )
    modules = list(_flattened(model, "model", torch))
    linears, hidden, pending = [], [], None
    for index, (where, module) in enumerate(modules):
        if isinstance(module, torch.nn.Identity):
            continue  # changes nothing, wherever it stands
        if isinstance(module, torch.nn.Linear):
            if linears and module.in_features != linears[-1].out_features:
                raise ValueError(
                    f"{where} takes {module.in_features} inputs, but the Linear before it "
                    f"gives {linears[-1].out_features}"
                )
            if module.bias is None:
                raise ValueError(
                    f"{where} is a Linear without bias; fastgrad's layers all have one "
                    "(give it bias=True, or check with a zero bias you keep fixed)"
                )
            if linears:
                hidden.append(pending or "identity")
            linears.append(module)
            pending = None
        else:
            last = index == len(modules) - 1
            if last and linears:
                raise ValueError(
                    f"model ends with {type(module).__name__}; end it with the last Linear and "
                    "let the loss module take the logits (CrossEntropyLoss, BCEWithLogitsLoss, "
                    "MSELoss)"
                )
            if not linears and isinstance(module, torch.nn.Flatten):
                raise ValueError(
                    f"{where} is Flatten: give fastgrad X already flat, of shape "
                    "(batch, n_in) (X.reshape(len(X), -1)), and leave Flatten out"
                )
            name = _activation(module, where)
            if not linears:
                raise ValueError(f"{where} ({type(module).__name__}) comes before the first Linear")
            if pending is not None:
                raise ValueError(
                    f"{where} ({type(module).__name__}) follows another activation; "
                    "fastgrad applies one per layer"
                )
            pending = name
    if not linears:
        raise ValueError("model holds no Linear layer")
    return linears, hidden


def _loss(loss_fn):
    """Return ``(output, loss, reduction)`` of a torch loss module."""
    if loss_fn is None:
        return "softmax", "cross_entropy", "mean"
    kind = type(loss_fn).__name__
    if kind not in _LOSSES:
        raise ValueError(
            f"loss_fn is {kind}, which fastgrad cannot express; supported: "
            f"{', '.join(_LOSSES)} (from logits)"
        )
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction not in ("mean", "sum"):
        raise ValueError(
            f"{kind}(reduction={reduction!r}) is not a scalar loss; use 'mean' or 'sum'"
        )
    if getattr(loss_fn, "weight", None) is not None:
        raise ValueError(f"{kind} with a weight tensor is not expressible in fastgrad")
    if getattr(loss_fn, "pos_weight", None) is not None:
        raise ValueError(f"{kind} with pos_weight is not expressible in fastgrad")
    if kind == "CrossEntropyLoss" and loss_fn.ignore_index != -100:
        raise ValueError(
            f"CrossEntropyLoss(ignore_index={loss_fn.ignore_index}) is not expressible in "
            "fastgrad, whose J counts every sample; leave the ignored samples out of the batch "
            "and use the default ignore_index=-100"
        )
    if kind == "CrossEntropyLoss" and float(loss_fn.label_smoothing) != 0.0:
        raise ValueError(
            f"CrossEntropyLoss(label_smoothing={loss_fn.label_smoothing}) is not expressible "
            "in fastgrad; smooth the targets yourself and pass them as probabilities"
        )
    output, loss = _LOSSES[kind]
    return output, loss, reduction


def from_torch(model, loss_fn=None):
    """Return the :class:`MLP` and parameters of a PyTorch ``nn.Sequential``.

    The network's ``J`` is exactly ``loss_fn(model(X), Y)``: the output/loss
    pair and its ``reduction`` follow the loss module (torch's ``"mean"`` over
    all elements for ``MSELoss`` and ``BCEWithLogitsLoss`` is fastgrad's
    ``reduction="mean"``).

    Parameters
    ----------
    model : torch.nn.Sequential
        ``Linear`` layers (with bias) separated by at most one activation
        each: ``ReLU``, ``LeakyReLU`` (any ``negative_slope``), ``Tanh``,
        ``Sigmoid``, ``ELU`` (any ``alpha``), ``Softplus`` (any ``beta``,
        ``threshold`` at least the default 20), each mapped to the hidden
        entry of the same parameter, e.g. ``("leaky_relu", 0.2)``;
        ``Identity`` anywhere changes nothing, and a Linear followed
        directly by a Linear has the identity between them. Nested
        ``nn.Sequential`` blocks are read as their modules in order. The
        last module is a ``Linear``: the loss module takes its logits.
    loss_fn : torch.nn.Module, optional
        ``CrossEntropyLoss``, ``BCEWithLogitsLoss`` or ``MSELoss``, each with
        ``reduction="mean"`` or ``"sum"``, without class weights,
        ``pos_weight``, label smoothing or an ``ignore_index`` other than the
        default. By default ``CrossEntropyLoss()``.

    Returns
    -------
    net : MLP
    params : dict
        ``{"W1": ..., "b1": ..., ...}``: float64 copies, ``Wl`` of shape
        ``(n_out, n_in)`` as in ``nn.Linear``, ``bl`` of shape ``(n_out,)``.

    Raises
    ------
    TypeError
        ``model`` is not an ``nn.Sequential``.
    ValueError
        A module or loss option fastgrad cannot express, or a Linear whose
        inputs are not the previous Linear's outputs, named.
    ImportError
        torch is not installed.

    Notes
    -----
    torch's ``Softplus`` returns ``x`` itself where ``beta x > 20`` (its
    ``threshold``); fastgrad's does not, so the two differ by up to
    ``exp(-20) / beta ~ 2e-9 / beta`` there. Inputs and targets are given to
    :func:`fastgrad.check` as numpy arrays in rows (``X`` of shape
    ``(batch, n_in)``); class indices for ``CrossEntropyLoss``.

    Examples
    --------
    >>> import torch                                                   # doctest: +SKIP
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
    ...                             torch.nn.Linear(8, 3))             # doctest: +SKIP
    >>> net, params = fg.from_torch(model, torch.nn.CrossEntropyLoss())  # doctest: +SKIP
    """
    linears, hidden = _layers(model)
    output, loss, reduction = _loss(loss_fn)
    sizes = [linears[0].in_features] + [layer.out_features for layer in linears]
    net = MLP(sizes, hidden=hidden, output=output, loss=loss, reduction=reduction)
    params = {}
    for u, layer in enumerate(linears, start=1):
        params[f"W{u}"] = layer.weight.detach().cpu().double().numpy().copy()
        params[f"b{u}"] = layer.bias.detach().cpu().double().numpy().copy()
    return net, params


def torch_gradients(model):
    """Return the gradients in a PyTorch ``nn.Sequential``'s ``.grad`` as fastgrad's dict.

    Call it after ``loss.backward()``.

    Parameters
    ----------
    model : torch.nn.Sequential
        As for :func:`from_torch`.

    Returns
    -------
    dict
        ``{"dW1": ..., "db1": ..., ...}``: float64 copies.

    Raises
    ------
    ValueError
        A parameter has no gradient (``.grad`` is None: no backward pass yet,
        or ``requires_grad=False``), named.
    """
    linears, _ = _layers(model)
    grads = {}
    for u, layer in enumerate(linears, start=1):
        for name, tensor in ((f"W{u}", layer.weight), (f"b{u}", layer.bias)):
            if tensor.grad is None:
                raise ValueError(
                    f"{name} (the {'weight' if name[0] == 'W' else 'bias'} of Linear layer "
                    f"{u}) has no .grad: call loss.backward() first, with requires_grad=True"
                )
            grads[f"d{name}"] = tensor.grad.detach().cpu().double().numpy().copy()
    return grads
