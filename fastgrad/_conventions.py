"""Conventions of the loss: how the per-element losses are reduced to ``J``.

The kernels compute the course's ``J``: the mean over the batch of each
sample's loss, with mse's ``1/2``. Other conventions people use differ from
it by an exact factor that depends only on the loss, the batch size ``m`` and
the number of outputs ``k``, so they are applied outside the kernels: the
data term of ``J``, of the backprop gradient and of the centered differences
is multiplied by :func:`data_scale`. The L2 term is not scaled.

- ``"course"`` (the default): mse ``(1/m) sum_b 1/2 sum_k (z - y)^2``, binary
  cross-entropy ``(1/m) sum_b sum_k bce``, cross-entropy ``-(1/m) sum_b log p_b[y_b]``;
- ``"mean"`` (torch's ``reduction="mean"``): mse and binary cross-entropy
  averaged over all ``m k`` elements, without mse's ``1/2``; cross-entropy as
  the course's;
- ``"sum"`` (torch's ``reduction="sum"``): the plain sum over all elements,
  without ``1/m`` nor mse's ``1/2``.
"""

from ._packing import require_choice

REDUCTIONS = ("course", "mean", "sum")
"""Names of the conventions, as ``MLP(..., reduction=...)`` takes them."""

WEIGHT_LAYOUTS = ("out_in", "in_out")
"""``Wl`` stored ``(n_out, n_in)`` (``W @ x``, torch) or ``(n_in, n_out)`` (``X @ W``)."""


def check_reduction(reduction):
    """Return ``reduction`` if it names a convention, else raise ``ValueError``."""
    return require_choice(
        "reduction", reduction, REDUCTIONS, f"one of {', '.join(map(repr, REDUCTIONS))}"
    )


def check_weights(weights):
    """Return ``weights`` if it names a weight layout, else raise ``ValueError``."""
    return require_choice(
        "weights",
        weights,
        WEIGHT_LAYOUTS,
        "'out_in' (W has shape (n_out, n_in), z = W x) or 'in_out' (shape (n_in, n_out), z = x W)",
    )


def data_scale(loss, reduction, batch, n_out):
    """Return the factor from the course's data term of ``J`` to the convention's.

    Parameters
    ----------
    loss : {"mse", "binary_cross_entropy", "cross_entropy"}
    reduction : {"course", "mean", "sum"}
    batch, n_out : int
        ``m`` and ``k``.

    Returns
    -------
    float
        Exact in binary floating point whenever ``k`` (``"mean"``) is a power
        of two; otherwise the ratio rounded once.
    """
    if reduction == "course":
        return 1.0
    if reduction == "mean":
        if loss == "mse":
            return 2.0 / n_out
        if loss == "binary_cross_entropy":
            return 1.0 / n_out
        return 1.0
    if loss == "mse":
        return 2.0 * batch
    return float(batch)


_SAMPLE = {
    "mse": "(z_bk - y_bk)^2",
    "binary_cross_entropy": "bce(z_bk, y_bk)",
}


def formula(loss, reduction, l2=0.0):
    """Return ``J`` written out, e.g. ``"J = (1/m) sum_b 1/2 sum_k (z_bk - y_bk)^2"``."""
    if loss == "cross_entropy":
        front = "-sum_b" if reduction == "sum" else "-(1/m) sum_b"
        text = f"J = {front} log softmax(z_b)[y_b]"
    else:
        term = _SAMPLE[loss]
        if reduction == "course":
            half = "1/2 " if loss == "mse" else ""
            text = f"J = (1/m) sum_b {half}sum_k {term}"
        elif reduction == "mean":
            text = f"J = (1/(m k)) sum_b sum_k {term}"
        else:
            text = f"J = sum_b sum_k {term}"
    if l2:
        text += " + l2/(2m) sum_l ||W_l||^2"
    return text


_WHAT = {
    "mean": {
        "mse": "your loss averages (z - y)^2 over the k outputs too, without the 1/2 "
        "(torch's MSELoss())",
        "binary_cross_entropy": "your loss averages over the k outputs too "
        "(torch's BCEWithLogitsLoss())",
    },
    "sum": {
        "mse": "your loss sums (z - y)^2 over the batch, without 1/m or 1/2 "
        "(torch's MSELoss(reduction='sum'))",
        "binary_cross_entropy": "your loss sums over the batch, without 1/m "
        "(torch's BCEWithLogitsLoss(reduction='sum'))",
        "cross_entropy": "your loss sums over the batch, without 1/m "
        "(torch's CrossEntropyLoss(reduction='sum'))",
    },
    "course": {
        "mse": "your loss is the course's (1/m) sum_b 1/2 sum_k (z - y)^2",
        "binary_cross_entropy": "your loss is the course's mean over the batch of the "
        "sum over outputs",
        "cross_entropy": "your loss is the mean over the batch",
    },
}

FIT = 1e-3
"""Relative distance under which a factor is taken to be a convention's."""


def convention_factor_hint(net, factor, batch):
    """Name the convention when ``analytic = factor x numerical`` is exactly a convention's ratio.

    Returns
    -------
    str or None
        ``"analytic = 0.5 x numerical = 2/k with k = 4 outputs: your loss ...;
        use MLP(..., reduction='mean')"``, or ``None`` when no other
        convention explains the factor.
    """
    n_out = net.sizes[-1]
    own = data_scale(net.loss_name, net.reduction, batch, n_out)
    for other in REDUCTIONS:
        if other == net.reduction:
            continue
        ratio = data_scale(net.loss_name, other, batch, n_out) / own
        if abs(ratio - 1.0) < FIT or abs(factor / ratio - 1.0) >= FIT:
            continue
        if batch > 1 and abs(ratio / batch - 1.0) < FIT:
            continue  # "a missing 1/m?" says it, and is the likelier mistake
        what = _WHAT[other].get(net.loss_name)
        if what is None:
            continue
        return (
            f"analytic = {factor:.4g} x numerical (k = {n_out} outputs, m = {batch}), "
            f"the ratio of the {other!r} convention to this network's {net.reduction!r}: "
            f"{what}; use MLP(..., reduction={other!r})"
        )
    return None
