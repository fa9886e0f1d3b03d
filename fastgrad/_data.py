"""Validation of a batch: inputs ``X`` and targets ``Y`` in either layout.

Everything downstream sees samples in rows: ``X`` as ``(batch, n_in)`` and the
targets as a dense float64 ``(batch, n_out)`` array (integer labels become
one-hot rows).
"""

import numpy as np

from ._packing import as_float64, require_choice, require_finite
from .kernels import dense

LAYOUTS = ("rows", "columns")


def check_layout(layout):
    """Return ``layout`` if it is ``"rows"`` or ``"columns"``, else raise ``ValueError``."""
    return require_choice(
        "layout", layout, LAYOUTS, "'rows' (batch, features) or 'columns' (features, batch)"
    )


def prepare_inputs(X, n_in, layout, copy=True):
    """Return ``X`` as a new C-contiguous float64 ``(batch, n_in)`` array.

    With ``copy=False``, the user's own array (or a transposed view of it)
    where it is already float64, for a caller that copies it anyway.
    """
    check_layout(layout)
    array = as_float64("X", X)
    if array.ndim != 2:
        raise ValueError(
            f"X must be 2-D {_expected_inputs(n_in, layout)} with layout={layout!r}; "
            f"got shape {array.shape}"
        )
    if layout == "columns":
        array = array.T
    if array.shape[1] != n_in:
        raise ValueError(
            f"X has shape {array.shape if layout == 'rows' else array.T.shape}; "
            f"expected {_expected_inputs(n_in, layout)} with layout={layout!r}: the network's "
            f"input layer has {n_in} units"
        )
    if array.shape[0] == 0:
        raise ValueError("X holds no samples: the batch must have at least one")
    require_finite("X", array)
    return np.array(array, dtype=np.float64, order="C") if copy else array


def _expected_inputs(n_in, layout):
    """Return the shape ``X`` should have, as error messages write it."""
    return "(batch, %d)" % n_in if layout == "rows" else "(%d, batch)" % n_in


def _labels_to_one_hot(labels, n_out):
    if labels.dtype.kind == "f":
        require_finite("Y", labels)
        if np.any(labels != np.round(labels)):
            raise ValueError("Y as a vector holds class labels and must be integers")
    labels = labels.astype(np.int64)
    one_hot = np.zeros((labels.shape[0], n_out))
    bad = dense.one_hot(labels, one_hot)
    if bad >= 0:
        raise ValueError(
            f"Y holds label {int(labels[bad])}, but the output layer has {n_out} units: "
            f"labels must lie in 0..{n_out - 1}"
        )
    return one_hot


def prepare_targets(Y, batch, n_out, loss, layout):
    """Return the targets as a new dense float64 ``(batch, n_out)`` array.

    Parameters
    ----------
    Y : array_like
        Targets: ``(batch, n_out)`` (``(n_out, batch)`` with
        ``layout="columns"``); integer labels of shape ``(batch,)`` for
        ``cross_entropy``; a vector of ``batch`` values when ``n_out == 1``.
    batch, n_out : int
        Batch size (from ``X``) and output units.
    loss : str
        The loss name, which decides what values are allowed.
    layout : str
        ``"rows"`` or ``"columns"``.
    """
    check_layout(layout)
    raw = np.asarray(Y)
    if raw.dtype.kind not in "fiub":
        raise TypeError(f"Y must hold real numbers or integer labels; got dtype {raw.dtype}")
    if (
        layout == "columns"
        and raw.ndim == 2
        and raw.shape[0] == 1
        and loss == "cross_entropy"
        and n_out > 1
    ):
        raw = raw[0]
    if raw.ndim == 1:
        if raw.shape[0] != batch:
            raise ValueError(f"Y has {raw.shape[0]} entries but X has {batch} samples")
        if loss == "cross_entropy":
            return _labels_to_one_hot(raw, n_out)
        if n_out != 1:
            raise ValueError(
                f"Y has shape {raw.shape}; expected "
                f"{(batch, n_out) if layout == 'rows' else (n_out, batch)} for {n_out} outputs "
                f"with layout={layout!r} (a vector of targets fits only one output)"
            )
        raw = raw[:, None]
    elif raw.ndim == 2 and layout == "columns":
        raw = raw.T
    elif raw.ndim != 2:
        raise ValueError(f"Y must be 1-D or 2-D; got shape {raw.shape}")
    if raw.shape != (batch, n_out):
        shown = raw.shape if layout == "rows" else raw.T.shape
        wanted = (batch, n_out) if layout == "rows" else (n_out, batch)
        raise ValueError(f"Y has shape {shown}; expected {wanted} with layout={layout!r}")
    targets = as_float64("Y", raw, copy=True)
    require_finite("Y", targets)
    # finite here, so the extremes alone say whether every target lies in [0, 1]
    if loss in ("cross_entropy", "binary_cross_entropy") and (
        np.minimum.reduce(targets, axis=None) < 0 or np.maximum.reduce(targets, axis=None) > 1
    ):
        raise ValueError(
            f"Y must lie in [0, 1] for {loss} (one-hot rows, soft labels or probabilities); "
            f"it ranges over [{targets.min():g}, {targets.max():g}]"
        )
    return targets
