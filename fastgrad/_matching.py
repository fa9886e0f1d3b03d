"""Is the described network the user's? Their loss value and gradients say.

Before any gradient is compared, the user's own ``J`` at ``theta`` (when they
pass it) is compared with the described network's. When the two differ beyond
rounding, the gradients would be checked against the wrong function, so the
check is not made; instead the nearby descriptions (each hidden activation,
each output/loss pair and convention, the weight layout, L2 on or off,
dropout off, the data layout, the parameter of a parametrized activation at a
round value) are evaluated, and the one whose ``J`` matches is named.

After a check whose weight tensors all fail, :func:`layout_hint` and
:func:`dropout_hint` try two readings of the user's gradients that are exact
and cheap to test: weights stored transposed, and a backward pass that leaves
out the dropout mask.
"""

import itertools
import numbers

import numpy as np

from ._conventions import REDUCTIONS
from .thresholds import relative_difference

LOSS_RTOL = 1e-5
"""Relative distance under which two loss values are the same ``J``.

A float32 forward pass agrees with float64 to about 1e-6; a mis-stated network
differs by far more (a wrong activation, a factor from a convention)."""

COMBINATION_WORK = 100_000_000
"""Multiply-adds of forward passes spent at most on every combination of hidden activations,
after the single changes (which are always tried): about 0.1-0.5 s."""

PARAMETER_GRIDS = {
    "leaky_relu": np.linspace(-1.0, 1.0, 41),
    "elu": np.linspace(0.0, 4.0, 41),
    "softplus": np.geomspace(0.05, 100.0, 31),
}
"""Where a hidden activation's parameter is sought from the user's loss: ``J`` is
evaluated on the grid, and each bracketed root refined by bisection."""

PARAMETER_RTOL = 1e-11
"""Relative distance under which a solved parameter's ``J`` is the user's: far tighter than
:data:`LOSS_RTOL`, since a free number can bring ``J`` within 1e-5 of any loss in range."""

PARAMETER_WORK = 200_000_000
"""Multiply-adds of forward passes spent at most on solving for activation parameters."""

MATCH = 1e-6
"""Relative difference under which a reading of the user's gradients explains them."""


def user_loss(value):
    """Return the user's loss value as a float, or raise ``TypeError``/``ValueError``."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    if hasattr(value, "item") and not isinstance(value, (numbers.Real, np.generic)):
        size = np.size(value) if isinstance(value, np.ndarray) else None
        if size is None and callable(getattr(value, "numel", None)):
            size = int(value.numel())  # a tensor of another library
        if size is not None and size != 1:
            raise ValueError(
                f"loss must be one number (your J at theta); got {type(value).__name__} "
                f"of {size} values (a loss with reduction='none'?)"
            )
        value = value.item()
    if not isinstance(value, (numbers.Real, np.generic)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"loss must be a real number (your J at theta); got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"loss must be finite; got {value}")
    return value


def same_loss(a, b):
    """Return whether two values of ``J`` agree to rounding (:data:`LOSS_RTOL`)."""
    return abs(a - b) <= LOSS_RTOL * max(abs(a), abs(b)) + 1e-300


def _describe(changes):
    return ", ".join(f"{key}={value!r}" for key, value in changes.items())


def _candidates(net, layout, batch):
    """Yield ``(changes, net_changes, layout)`` for descriptions near ``net``, likeliest first."""
    options = net.options()
    # names, or (name, parameter) where the parameter is not the default: a candidate that
    # changes one layer keeps the others' parameters, and a plain name tries the default
    hidden = net.hidden_entries
    names = ["identity", "relu", "leaky_relu", "tanh", "sigmoid", "elu", "softplus"]
    for reduction in REDUCTIONS:
        if reduction != net.reduction:
            yield {"reduction": reduction}, layout
    if hidden:
        for name in names:
            if [name] * len(hidden) != hidden:
                yield {"hidden": [name] * len(hidden)}, layout
        for layer, name in itertools.product(range(len(hidden)), names):
            changed = hidden[:layer] + [name] + hidden[layer + 1 :]
            if name != hidden[layer] and len(set(changed)) > 1:
                yield {"hidden": changed}, layout
    pairs = (("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"), ("identity", "mse"))
    for (output, loss), reduction in itertools.product(pairs, REDUCTIONS):
        if output != net.output:
            yield {"output": output, "loss": loss, "reduction": reduction}, layout
    other = "in_out" if options["weights"] == "out_in" else "out_in"
    yield {"weights": other}, layout
    if net.l2:
        yield {"l2": 0.0}, layout
    if any(net.dropout):
        yield {"dropout": None}, layout
    other_layout = "columns" if layout == "rows" else "rows"
    yield {}, other_layout
    yield {"weights": other}, other_layout
    sizes = net.sizes
    per_pass = batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    if len(hidden) > 1 and len(names) ** len(hidden) * per_pass <= COMBINATION_WORK:
        seen = {tuple(hidden)}
        for combo in itertools.product(names, repeat=len(hidden)):
            if combo not in seen and len(set(combo)) > 1:
                yield {"hidden": list(combo)}, layout


def _fitted_parameters(net, params, X, Y, layout, dropout_masks, loss_user, batch):
    """Yield ``{"hidden": [...], "_value": J}`` where a parametrized activation explains the loss.

    For each hidden layer alone and for all of them together, and each
    activation that takes a parameter, ``J`` is solved for the parameter on
    :data:`PARAMETER_GRIDS`. With one free number some value always fits a
    loss in range, so a root is named only where rounding it to one or two
    significant digits (0.2, 0.01, 3.0, ...) still gives the user's ``J`` to
    :data:`PARAMETER_RTOL` (a float64 forward pass; not a float32 one).
    """
    hidden = net.hidden_entries
    if not hidden:
        return
    sizes = net.sizes
    per_pass = batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    budget = PARAMETER_WORK // max(per_pass, 1)
    layers = [[u] for u in range(len(hidden))]
    if len(hidden) > 1:
        layers.insert(0, list(range(len(hidden))))
    stated = {e[0] if isinstance(e, tuple) else e for e in hidden}
    names = sorted(PARAMETER_GRIDS, key=lambda name: name not in stated)
    for chosen, name in itertools.product(layers, names):

        def entries(value, chosen=chosen, name=name):
            return [(name, value) if u in chosen else e for u, e in enumerate(hidden)]

        def gap(value, chosen=chosen, name=name):
            found = _try(net, {"hidden": entries(value)}, params, X, Y, layout, dropout_masks)
            return np.nan if found is None else found - loss_user

        grid = PARAMETER_GRIDS[name]
        if budget < len(grid) + 30:
            return
        budget -= len(grid)
        values = np.array([gap(float(v)) for v in grid])
        for i in np.flatnonzero(np.sign(values[:-1]) * np.sign(values[1:]) <= 0):
            lo, hi, g_lo = float(grid[i]), float(grid[i + 1]), values[i]
            if not (np.isfinite(g_lo) and np.isfinite(values[i + 1])):
                continue
            for _ in range(24):  # to 1e-8 of the bracket: finer than the rounding
                mid = 0.5 * (lo + hi)
                g_mid = gap(mid)
                budget -= 1
                if not np.isfinite(g_mid):
                    break
                if np.sign(g_mid) == np.sign(g_lo):
                    lo, g_lo = mid, g_mid
                else:
                    hi = mid
            root = 0.5 * (lo + hi)
            for digits in (1, 2):
                value = float(f"{root:.{digits - 1}e}")
                found = gap(value)
                budget -= 1
                if np.isfinite(found) and abs(found) <= PARAMETER_RTOL * abs(loss_user):
                    changes = net.replace(hidden=entries(value)).options()["hidden"]
                    yield {"hidden": changes, "_value": found + loss_user}
                    return


def _try(net, changes, params, X, Y, layout, dropout_masks):
    try:
        candidate = net.replace(**changes)
        return candidate.loss(params, X, Y, layout, dropout_masks)
    except (ValueError, TypeError):
        return None


def loss_mismatch(net, params, X, Y, layout, dropout_masks, loss_user, loss_net):
    """Return the reasons to give when the user's ``J`` is not the network's, or ``[]``.

    Parameters
    ----------
    net : MLP
    params, X, Y, layout, dropout_masks
        As given to :func:`fastgrad.check`.
    loss_user : float
        The user's ``J`` at ``theta``.
    loss_net : float
        The described network's ``J`` at ``theta``.

    Returns
    -------
    list of str
        Empty when the two agree; else a first line saying that the gradients
        were not compared, and one naming the description whose ``J`` matches,
        if one of the nearby ones does.
    """
    if same_loss(loss_user, loss_net):
        return []
    reasons = [
        f"your loss {loss_user:.10g} is not the described network's J = {loss_net:.10g} "
        f"({net.formula()}): the gradients were not compared, they would be checked "
        "against another function"
    ]
    batch = np.shape(X)[0 if layout == "rows" else 1]
    for changes, candidate_layout in _candidates(net, layout, batch):
        value = _try(net, changes, params, X, Y, candidate_layout, dropout_masks)
        if value is not None and same_loss(loss_user, value):
            if candidate_layout != layout:
                changes = {**changes, "layout": candidate_layout}
            reasons.append(
                f"your loss matches {_describe(changes)} (J = {value:.10g}): describe the "
                "network that way and check again"
            )
            return reasons
    for changes in _fitted_parameters(net, params, X, Y, layout, dropout_masks, loss_user, batch):
        value = changes.pop("_value")
        reasons.append(
            f"your loss matches {_describe(changes)} (J = {value:.10g}): describe the network "
            "that way and check again"
        )
        return reasons
    masks = ""
    if any(net.dropout) and dropout_masks is None:
        masks = (
            "; the network drops units with masks drawn from dropout_seed, not your forward "
            "pass's: pass yours, dropout_masks=[D1, ...] (arrays D1, D2, ... in --params)"
        )
    reasons.append(
        "no nearby description matches it (each hidden activation alone and for all layers, "
        "output/loss pair and reduction, weight layout, L2 off, dropout off, data layout, and "
        f"the activations' parameters at round values were tried){masks}"
    )
    return reasons


def _agrees(a, b):
    return relative_difference(a, b) < MATCH


def layout_hint(net, params, X, Y, grads, layout, dropout_masks):
    """Say so when reading the weights transposed makes the user's gradients right.

    Returns
    -------
    str or None
    """
    other = "in_out" if net.weights == "out_in" else "out_in"
    try:
        flipped = net.replace(weights=other)
        theirs = flipped.gradients(params, X, Y, layout, dropout_masks)
        _, _ = flipped.packing.pack(grads, prefix="d", what="grads")
    except (ValueError, TypeError):
        return None
    for key, value in theirs.items():
        if not _agrees(np.asarray(grads[key], dtype=float).reshape(value.shape), value):
            return None
    looks = "(n_in, n_out), the X @ W convention" if other == "in_out" else "(n_out, n_in)"
    return (
        f"your weights look {looks}: with them read that way your gradients are right; "
        f"pass W.T and dW.T, or MLP(..., weights={other!r})"
    )


def dropout_hint(work, grads_flat):
    """Say so when the user's gradient is the backward pass without a dropout mask or its scaling.

    Tries, for all hidden layers with dropout together and for each alone,
    the backward pass with the multiplier ``D / (1 - p)`` replaced by ones
    (mask and scaling both left out), by ``1 / (1 - p)`` (mask left out,
    scaling kept) and by ``D`` (mask kept, scaling left out). The first and
    the last agree wherever no dropped unit has a nonzero derivative; the hint
    then names both.

    Returns
    -------
    str or None
    """
    net = work.net
    layers = [u for u, rate in enumerate(net.dropout, start=1) if rate]
    if not layers:
        return None
    saved = work.masks.copy()
    choices = [layers] + ([[u] for u in layers] if len(layers) > 1 else [])
    try:
        for chosen in choices:
            matched = set()
            for reading in ("ones", "scaled", "unscaled"):
                work.masks[:] = saved
                for u in chosen:
                    keep = 1.0 - net.dropout[u - 1]
                    block = work.block(work.masks, u)
                    if reading == "unscaled":
                        block *= keep
                    else:
                        block[:] = 1.0 if reading == "ones" else 1.0 / keep
                if _agrees(grads_flat, work.gradient()):
                    matched.add(reading)
            if matched:
                return _dropout_text(matched, ", ".join(str(u) for u in chosen))
    finally:
        work.masks[:] = saved
    return None


def _dropout_text(matched, where):
    if matched == {"unscaled"}:
        return (
            f"your gradient is the backward pass with the dropout mask D of hidden layer(s) "
            f"{where} but without its 1/(1-p) scaling: multiply dA by D/(1-p), as in the "
            "forward pass"
        )
    if "ones" in matched and "unscaled" in matched:
        return (
            f"your gradient is the backward pass without the dropout mask of hidden layer(s) "
            f"{where} and its 1/(1-p) scaling, or with the mask D but without its 1/(1-p) "
            "scaling (on this batch the two agree): multiply dA by the same D/(1-p) as the "
            "forward pass"
        )
    also = "" if "scaled" in matched else " (and its 1/(1-p) scaling)"
    return (
        f"your gradient is the backward pass without the dropout mask of hidden layer(s) "
        f"{where}: multiply dA by the same mask D as the forward pass{also}"
    )
