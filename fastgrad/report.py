"""The result of a gradient check: per-tensor summaries, worst entries, hints."""

import json
from dataclasses import dataclass, field

import numpy as np

from ._hints import network_hint, tensor_hint
from .thresholds import Verdict, entry_errors, error_floor, relative_difference


@dataclass(frozen=True)
class Entry:
    """One compared entry of a gradient.

    Attributes
    ----------
    tensor : str
        Parameter name, e.g. ``"W1"``.
    index : tuple of int
        Position in the parameter, e.g. ``(7, 9)``.
    analytic, numerical : float
        The two gradients at that position.
    error : float
        ``|a - n| / max(|a| + |n|, floor)``.
    kink : bool
        Whether an evaluation of the centered difference crossed a kink.
    """

    tensor: str
    index: tuple
    analytic: float
    numerical: float
    error: float
    kink: bool = False

    @property
    def label(self):
        """``"W1[7, 9]"``."""
        return f"{self.tensor}[{', '.join(str(i) for i in self.index)}]"

    def __str__(self):
        return (f"{self.label}: analytic {self.analytic:.6g}, numerical {self.numerical:.6g} "
                f"(error {self.error:.2e})")

    def to_dict(self):
        """Return a JSON-ready dict."""
        return {"tensor": self.tensor, "index": list(self.index), "analytic": self.analytic,
                "numerical": self.numerical, "error": self.error, "kink": self.kink}


@dataclass(frozen=True)
class Direction:
    """One random direction of a directional check: ``v . grad`` both ways."""

    analytic: float
    numerical: float
    error: float
    kink: bool = False

    def to_dict(self):
        """Return a JSON-ready dict."""
        return {"analytic": self.analytic, "numerical": self.numerical, "error": self.error,
                "kink": self.kink}


@dataclass
class TensorReport:
    """How one parameter tensor's gradient compares.

    Attributes
    ----------
    name : str
        ``"W1"``, ``"b1"``, ...
    shape : tuple
        Shape of the parameter.
    checked : int
        Entries (or, in directional mode, directions) compared.
    difference : float
        ``||a - n|| / (||a|| + ||n||)`` over the compared entries, kinks left out.
    verdict : Verdict
        The worse of the verdicts of ``difference`` and of ``max_error``.
    max_error, median_error : float
        Largest and median entry error, kinks left out.
    bands : dict
        ``{Verdict: count}``: how many entry errors fall in each band.
    kinks : int
        Entries whose centered difference crossed a kink (left out of the verdict).
    worst : Entry or None
        The entry with the largest error.
    hint : str or None
        The likely mistake, when the verdict is SUSPICIOUS or WRONG.
    directions : list of Direction or None
        The directions compared in directional mode.
    """

    name: str
    shape: tuple
    checked: int
    difference: float
    verdict: Verdict
    max_error: float
    median_error: float
    bands: dict
    kinks: int
    worst: Entry | None
    hint: str | None = None
    directions: list | None = field(default=None, repr=False)

    def to_dict(self):
        """Return a JSON-ready dict."""
        out = {"name": self.name, "shape": list(self.shape), "checked": self.checked,
               "difference": self.difference, "verdict": self.verdict.name,
               "max_error": self.max_error, "median_error": self.median_error,
               "bands": {v.name: n for v, n in self.bands.items()}, "kinks": self.kinks,
               "worst": None if self.worst is None else self.worst.to_dict(), "hint": self.hint}
        if self.directions is not None:
            out["directions"] = [d.to_dict() for d in self.directions]
        return out


class CheckReport:
    """The outcome of :func:`fastgrad.check`.

    Attributes
    ----------
    difference : float
        Relative difference of the whole gradient vector (the course's
        formula), over the compared entries, kinks left out.
    verdict : Verdict
        The worst verdict of any tensor.
    tensors : dict
        ``{"W1": TensorReport, ...}`` in network order.
    numerical : dict
        ``{"dW1": array, ...}`` numerical gradient; NaN where not computed.
    analytic : dict
        ``{"dW1": array, ...}`` the gradient that was checked.
    kinks : list of Entry
        Entries whose centered difference crossed a relu or leaky relu kink.
    mode, epsilon, batch, loss, thresholds, partial, seconds, hints
        How the check was made; ``partial`` is true when it was interrupted;
        ``hints`` lists every hint, network-wide ones included.
    """

    def __init__(self, *, net, theta, analytic, numerical, checked, kinks, loss, batch, epsilon,
                 thresholds, mode, bias_shapes=None, partial=False, seconds=None,
                 directions=None, details=None):
        self.net = net
        self.mode = mode
        self.loss = float(loss)
        self.batch = int(batch)
        self.epsilon = float(epsilon)
        self.thresholds = thresholds
        self.partial = bool(partial)
        self.seconds = seconds
        self.details = dict(details or {})
        self._theta = theta
        self._analytic = analytic
        self._numerical = numerical
        self._checked = checked
        self._kink_counts = kinks
        self._bias_shapes = bias_shapes or {}
        self.floor = error_floor(loss, epsilon)
        packing = net.packing
        self.tensors = {}
        compared_a, compared_n = [], []
        for name in packing.names:
            part = packing.slice(name)
            dirs = None if directions is None else directions.get(name)
            report, a, n = self._tensor_report(name, part, dirs)
            self.tensors[name] = report
            compared_a.append(a)
            compared_n.append(n)
        self.difference = relative_difference(np.concatenate(compared_a), np.concatenate(compared_n))
        verdicts = [t.verdict for t in self.tensors.values() if t.checked]
        self.verdict = max([thresholds.classify(self.difference), *verdicts])
        where = network_hint(self)
        if where:
            for t in self.tensors.values():
                if t.verdict >= Verdict.SUSPICIOUS and t.hint is None:
                    t.hint = where
        grouped = {}
        for t in self.tensors.values():
            if t.hint:
                grouped.setdefault(t.hint, []).append(t.name)
        self.hints = [f"{', '.join(names)}: {hint}" for hint, names in grouped.items()]
        if where and where not in grouped:
            self.hints.append(where)

    def _tensor_report(self, name, part, directions):
        shape = self.net.packing.shapes[name]
        a_all, n_all = self._analytic[part], self._numerical[part]
        checked = self._checked[part]
        kinked = self._kink_counts[part] > 0
        use = checked & ~kinked
        errors = entry_errors(a_all[use], n_all[use], self.floor)
        index = np.flatnonzero(use)
        if directions is not None:
            kept = [d for d in directions if not d.kink]
            da = np.array([d.analytic for d in kept])
            dn = np.array([d.numerical for d in kept])
            cmp_a, cmp_n = da, dn
            dir_errors = np.array([d.error for d in kept])
            all_errors = np.concatenate([dir_errors, errors])
            n_checked = len(directions)
        else:
            cmp_a, cmp_n = a_all[use], n_all[use]
            all_errors = errors
            n_checked = int(checked.sum())
        difference = relative_difference(cmp_a, cmp_n)
        max_error = float(all_errors.max()) if all_errors.size else 0.0
        median_error = float(np.median(all_errors)) if all_errors.size else 0.0
        verdict = max(self.thresholds.classify(difference), self.thresholds.classify(max_error))
        worst = None
        if errors.size:
            flat = int(index[np.argmax(errors)])
            worst = self._entry(name, shape, part, flat)
        report = TensorReport(name=name, shape=shape, checked=n_checked, difference=difference,
                              verdict=verdict if n_checked else Verdict.CORRECT,
                              max_error=max_error, median_error=median_error,
                              bands=self.thresholds.bands(all_errors), kinks=int(kinked.sum()),
                              worst=worst, directions=directions)
        if report.verdict >= Verdict.SUSPICIOUS:
            report.hint = tensor_hint(self, name)
        return report, cmp_a, cmp_n

    def _entry(self, name, shape, part, flat):
        a = float(self._analytic[part][flat])
        n = float(self._numerical[part][flat])
        error = float(entry_errors(np.array([a]), np.array([n]), self.floor)[0])
        return Entry(tensor=name, index=tuple(int(i) for i in np.unravel_index(flat, shape)),
                     analytic=a, numerical=n, error=error,
                     kink=bool(self._kink_counts[part][flat] > 0))

    # --- views -------------------------------------------------------------------------

    def tensor_arrays(self, name):
        """Return ``(analytic, numerical, checked, kinks, param)`` arrays of one tensor."""
        part = self.net.packing.slice(name)
        shape = self.net.packing.shapes[name]
        return (self._analytic[part].reshape(shape), self._numerical[part].reshape(shape),
                self._checked[part].reshape(shape), self._kink_counts[part].reshape(shape),
                self._theta[part].reshape(shape))

    @property
    def numerical(self):
        """``{"dW1": ..., ...}``: the numerical gradient, NaN where not computed."""
        return self.net.packing.unpack(self._numerical.copy(), self._bias_shapes, prefix="d")

    @property
    def analytic(self):
        """``{"dW1": ..., ...}``: the gradient that was checked."""
        return self.net.packing.unpack(self._analytic.copy(), self._bias_shapes, prefix="d")

    @property
    def kinks(self):
        """Entries whose centered difference crossed a kink, in network order."""
        out = []
        for name in self.net.packing.names:
            part = self.net.packing.slice(name)
            for flat in np.flatnonzero(self._checked[part] & (self._kink_counts[part] > 0)):
                out.append(self._entry(name, self.net.packing.shapes[name], part, int(flat)))
        return out

    @property
    def checked(self):
        """Number of entries whose numerical gradient was computed."""
        return int(self._checked.sum())

    def worst(self, k=10):
        """Return the ``k`` compared entries with the largest errors, worst first.

        Entries whose centered difference crossed a kink are left out (see
        :attr:`kinks`).
        """
        if not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"k must be a non-negative integer; got {k!r}")
        use = self._checked & (self._kink_counts == 0)
        index = np.flatnonzero(use)
        errors = entry_errors(self._analytic[index], self._numerical[index], self.floor)
        order = np.argsort(-errors, kind="stable")[:k]
        out = []
        for flat in index[order]:
            name = self._tensor_of(int(flat))
            part = self.net.packing.slice(name)
            out.append(self._entry(name, self.net.packing.shapes[name], part,
                                   int(flat) - part.start))
        return out

    def _tensor_of(self, flat):
        for name in self.net.packing.names:
            part = self.net.packing.slice(name)
            if part.start <= flat < part.stop:
                return name
        raise IndexError(flat)

    # --- output ------------------------------------------------------------------------

    def to_dict(self):
        """Return the report as a JSON-ready dict (no arrays)."""
        kinks = self.kinks
        return {
            "network": {"sizes": list(self.net.sizes), "hidden": list(self.net.hidden),
                        "output": self.net.output, "loss": self.net.loss_name,
                        "l2": self.net.l2, "dropout": list(self.net.dropout),
                        "n_params": self.net.n_params},
            "mode": self.mode, "epsilon": self.epsilon, "batch": self.batch, "loss": self.loss,
            "thresholds": {"correct": self.thresholds.correct,
                           "acceptable": self.thresholds.acceptable,
                           "suspicious": self.thresholds.suspicious},
            "checked": self.checked, "partial": self.partial, "seconds": self.seconds,
            "difference": self.difference, "verdict": self.verdict.name,
            "tensors": [t.to_dict() for t in self.tensors.values()],
            "worst": [e.to_dict() for e in self.worst(10)],
            "kinks": {"count": len(kinks), "entries": [e.to_dict() for e in kinks[:20]]},
            "hints": list(self.hints),
            "details": self.details,
        }

    def to_json(self, **kwargs):
        """Return :meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)

    def __repr__(self):
        return (f"<CheckReport {self.verdict.name} difference={self.difference:.3e} "
                f"mode={self.mode!r} checked={self.checked}>")

    def __str__(self):
        from ._format import format_report

        return format_report(self)
