"""The user's own dropout keep-masks, validated and turned into multipliers."""

import warnings

import numpy as np

from ._data import check_layout
from ._packing import PrecisionWarning, as_float64, require_finite


def keep_multipliers(net, masks, batch, layout):
    """Return one ``(batch, n_l)`` multiplier array per hidden layer from 0/1 keep-masks.

    Parameters
    ----------
    net : MLP
        The network; ``net.dropout[l]`` is the drop probability ``p`` of hidden
        layer ``l + 1``, whose kept units are scaled by ``1 / (1 - p)``.
    masks : sequence of array_like or None
        One keep-mask per hidden layer, 0 (dropped) or 1 (kept), shaped like
        that layer's activations: ``(batch, n_l)`` with ``layout="rows"``,
        ``(n_l, batch)`` with ``layout="columns"``. ``None`` stands for all
        ones and is allowed only where ``p = 0``.
    batch : int
        Samples in the batch.
    layout : {"rows", "columns"}

    Returns
    -------
    list of ndarray
        Entries ``0`` or ``1 / (1 - p)``, samples in rows.

    Raises
    ------
    TypeError, ValueError
        Naming the mask and what is wrong with it.
    """
    check_layout(layout)
    widths = net.sizes[1:-1]
    if isinstance(masks, np.ndarray) or not isinstance(masks, (list, tuple)):
        raise TypeError(
            "dropout_masks must be a list with one 0/1 keep-mask per hidden layer; "
            f"got {type(masks).__name__}"
        )
    if len(masks) != len(widths):
        raise ValueError(
            f"dropout_masks holds {len(masks)} mask(s) for {len(widths)} hidden layer(s)"
        )
    out = []
    for layer, (mask, width, rate) in enumerate(
        zip(masks, widths, net.dropout, strict=True), start=1
    ):
        name = f"dropout_masks[{layer - 1}] (hidden layer {layer})"
        if mask is None:
            if rate:
                raise ValueError(
                    f"{name} is None, but the network drops units there with p = {rate:g}"
                )
            out.append(np.ones((batch, width)))
            continue
        with warnings.catch_warnings():
            # 0 and 1 are exact in any precision, and anything else is refused below
            warnings.simplefilter("ignore", PrecisionWarning)
            array = as_float64(name, mask)
        wanted = (batch, width) if layout == "rows" else (width, batch)
        if array.shape != wanted:
            raise ValueError(
                f"{name} has shape {array.shape}; expected {wanted}, the shape of that "
                f"layer's activations with layout={layout!r}"
            )
        require_finite(name, array)
        if layout == "columns":
            array = array.T
        binary = (array == 0.0) | (array == 1.0)
        if not binary.all():
            scaled = rate and np.all((array == 0.0) | np.isclose(array, 1.0 / (1.0 - rate)))
            raise ValueError(
                f"{name} must hold 0 (dropped) and 1 (kept) only; "
                + (
                    "it looks already scaled by 1/(1-p): pass the 0/1 mask, the scaling "
                    "comes from the network's dropout=p (net.dropout_masks(batch, "
                    "scaled=False) gives the network's own as 0/1 masks)"
                    if scaled
                    else f"it holds {array[~binary].flat[0]!r}"
                )
            )
        if rate == 0.0:
            if not array.all():
                raise ValueError(
                    f"{name} drops {int(np.count_nonzero(array == 0.0))} unit(s), but the "
                    "network has dropout p = 0 there: give MLP(..., dropout=p) the rate your "
                    "forward pass uses"
                )
            out.append(np.ones((batch, width)))
        else:
            out.append(array / (1.0 - rate))
    return out
