"""Name the likely mistake behind a failing gradient, from the entries themselves.

Each test looks for one classic backprop bug in the compared entries of a
tensor: a missing gradient, a few wrong entries, a forgotten L2 term, a
constant factor (a missing ``1/m``, a flipped sign, a stray 2), a transposed
weight, a few wrong units or inputs. :func:`network_hint` looks across
tensors: when every layer above some point is right and the ones below are
wrong, the error enters where the backward pass crosses that hidden layer.
"""

import math

import numpy as np

from ._conventions import convention_factor_hint
from .thresholds import Verdict, relative_difference

FIT = 1e-3
"""Relative residual under which a pattern is taken to explain the error."""


def _few_entries(name, a, n, checked, errors, limit, thresholds, population):
    """Name up to ``limit`` wrong entries when they are under a tenth of ``population``.

    ``population`` is how many entries are known to agree or not: those
    compared, or in directional mode the whole tensor (bisection showed the
    rest agree).
    """
    bad = checked & (errors >= thresholds.acceptable)
    count = int(bad.sum())
    if 0 < count <= limit and count < 0.1 * population:
        where = [f"{name}[{', '.join(str(int(i)) for i in idx)}]" for idx in np.argwhere(bad)]
        noun = "entry is" if count == 1 else "entries are"
        ratio = a[bad] / np.where(n[bad] == 0, np.nan, n[bad])
        detail = ""
        if count == 1 and np.isfinite(ratio).all():
            detail = f" (analytic = {ratio[0]:.4g} x numerical)"
        return f"only {count} {noun} wrong, the rest agree: {', '.join(where)}{detail}"
    return None


def fitted_factor(a, n):
    """Return ``c`` when ``a = c n`` to within :data:`FIT`, else ``None``."""
    # c is the same for a / s and n / s: scaled, squares of entries beyond 1e154 do not
    # overflow (a factor of NaN) nor those below 1e-154 underflow
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    s = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(n), initial=0.0)))
    if not (math.isfinite(s) and s > 0.0):
        return None
    a, n = a / s, n / s
    denominator = float(n @ n)
    if denominator == 0.0:
        return None
    c = float(a @ n) / denominator
    if np.linalg.norm(a - c * n) > FIT * np.linalg.norm(a):
        return None
    return c


def _factor(a, n, batch, net=None):
    c = fitted_factor(a, n)
    if c is None or abs(c - 1.0) < FIT:
        return None
    convention = None if net is None else convention_factor_hint(net, c, batch)
    if convention:
        return convention
    return factor_hint(c, batch)


def factor_hint(c, batch=1):
    """Name the likely mistake behind ``analytic = c x numerical`` (``c`` not 1)."""
    if abs(c + 1.0) < FIT:
        return "sign flipped: analytic = -numerical"
    if batch > 1 and abs(c / batch - 1.0) < FIT:
        return f"analytic = {c:.4g} x numerical, x m = {batch}: a missing 1/m?"
    if batch > 1 and abs(c * batch - 1.0) < FIT:
        return f"analytic = numerical / {1 / c:.4g}, / m = {batch}: 1/m applied twice?"
    if abs(c - 2.0) < FIT:
        return "analytic = 2.00 x numerical: a factor 2 too many (a missing 1/2 in the loss?)"
    if abs(c - 0.5) < FIT:
        return "analytic = 0.50 x numerical: a stray factor 1/2"
    return f"analytic = {c:.4g} x numerical: a constant factor is wrong"


def _l2(report, name, a, n, param):
    lam = report.net.l2
    if not name.startswith("W") or lam == 0.0:
        return None
    decay = lam / report.batch * param
    if np.linalg.norm(decay) == 0.0:
        return None
    gap = a - n
    if relative_difference(-gap, decay) < FIT:
        return (
            f"the L2 term (l2/m) W = ({lam:g}/{report.batch}) W is missing from the "
            "analytic gradient"
        )
    if relative_difference(gap, decay) < FIT:
        return "the L2 term (l2/m) W is counted twice in the analytic gradient"
    if relative_difference(gap, lam * param) < FIT:
        return "the L2 term is l2 W instead of (l2/m) W: a missing 1/m in the penalty's gradient"
    return None


def _transposed(a, n):
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        return None
    if relative_difference(a, n.T) < FIT:
        return "transposed: analytic = numerical.T (rows and columns swapped)"
    return None


def _lines(name, errors, checked, thresholds):
    if errors.ndim != 2:
        return None
    bad = checked & (errors >= thresholds.acceptable)
    good = checked & (errors < thresholds.acceptable)
    for axis, what, unit in ((1, "rows", "output units"), (0, "columns", "inputs")):
        bad_lines = np.flatnonzero(bad.any(axis=axis))
        clean_lines = np.flatnonzero(good.any(axis=axis) & ~bad.any(axis=axis))
        lines = bad.shape[1 - axis]
        if 0 < bad_lines.size <= max(1, lines // 4) and clean_lines.size:
            shown = ", ".join(str(int(i)) for i in bad_lines[:8])
            more = "" if bad_lines.size <= 8 else f" and {bad_lines.size - 8} more"
            return f"only {what} {shown}{more} of {name} are wrong ({unit}); the others agree"
    return None


def tensor_hint(report, name):
    """Return the likely mistake behind tensor ``name``'s failure, or ``None``."""
    use, analytic, numerical, errors = report.compared(name)
    param = report.tensor_arrays(name)[4]
    directional = report.mode == "directional"
    if directional and not np.any(use & (errors >= report.thresholds.acceptable)):
        return (
            "location unknown: random directions disagree but no entry differenced one by one "
            "does; check this tensor with mode='full'"
        )
    if not use.any():
        return None
    a, n = analytic[use], numerical[use]
    if not np.any(a) and np.any(n):
        return "the analytic gradient is all zero: is it computed and returned for this tensor?"
    if np.any(a) and not np.any(n):
        return (
            "the numerical gradient is zero (the loss does not depend on this tensor here) "
            "but the analytic gradient is not"
        )
    errors = np.where(use, errors, 0.0)
    full = bool(use.all())
    population = analytic.size if directional else int(use.sum())
    for hint in (
        _few_entries(name, analytic, numerical, use, errors, 3, report.thresholds, population),
        _l2(report, name, a, n, param[use]),
        _factor(a, n, report.batch, report.net),
        _transposed(analytic, numerical) if full else None,
        None if directional else _lines(name, errors, use, report.thresholds),
    ):
        if hint:
            return hint
    return None


def network_hint(net, tensors):
    """Return a hint about where in the network errors start, or ``None``.

    When every tensor of the layers above hidden layer ``l`` passes and
    every tensor of layers ``1..l`` fails, the backward pass goes wrong as it
    crosses hidden layer ``l``: its activation's derivative (or the product
    with ``W(l+1)``, or the dropout mask).
    """
    n_layers = len(net.sizes) - 1
    failing = []
    for layer in range(1, n_layers + 1):
        verdicts = [tensors[f"{kind}{layer}"] for kind in ("W", "b")]
        if any(t.checked == 0 for t in verdicts):
            return None
        failing.append(all(t.verdict >= Verdict.SUSPICIOUS for t in verdicts))
    if not any(failing) or all(failing):
        return None
    top = max(i for i, bad in enumerate(failing, start=1) if bad)
    if top == n_layers or not all(failing[:top]) or any(failing[top:]):
        return None
    activation = net.hidden_entries[top - 1]
    return (
        f"layers 1..{top} are wrong while layers {top + 1}..{n_layers} agree: the error enters "
        f"where the backward pass crosses hidden layer {top} — check the derivative of its "
        f"activation ({activation}), the product with W{top + 1}"
        + (", and its dropout mask" if net.dropout[top - 1] else "")
    )
