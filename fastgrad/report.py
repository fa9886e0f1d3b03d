"""The result of a gradient check: per-tensor summaries, worst entries, hints."""

import functools
import json
import math
from dataclasses import dataclass

import numpy as np

from ._hints import network_hint, tensor_hint
from ._magnitude import comparison_floor, vanishes
from .kernels.compare import compare, judge
from .thresholds import Verdict, squared_norms


def _median(values):
    if values.size == 0:
        return 0.0
    ordered = np.sort(values)
    middle = values.size // 2
    return float(0.5 * (ordered[(values.size - 1) // 2] + ordered[middle]))


_VERDICTS = tuple(sorted(Verdict))
"""Each verdict at the index of its value: looked up faster than ``Verdict(value)`` is made."""
_SUSPICIOUS, _INCONCLUSIVE = int(Verdict.SUSPICIOUS), int(Verdict.INCONCLUSIVE)
_CORRECT, _ACCEPTABLE, _WRONG = int(Verdict.CORRECT), int(Verdict.ACCEPTABLE), int(Verdict.WRONG)


def _worse_level(a, b, correct, acceptable, suspicious):
    """Return ``max(int(classify(a)), int(classify(b)))`` of :meth:`Thresholds.classify`.

    The worse of two errors' verdicts is the verdict of the larger error (NaN
    is WRONG), in Python's comparisons: no enum member is made.
    """
    if not (a < suspicious and b < suspicious):  # NaN too
        return _WRONG
    worst = a if a > b else b
    if worst < correct:
        return _CORRECT
    return _ACCEPTABLE if worst < acceptable else _SUSPICIOUS


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
        ``|a - n| / max(|a| + |n|, floor)``; for a kink entry, ``n`` is the
        point of its interval nearest to ``a``. NaN when the entry was not
        compared.
    kink : bool
        Whether an evaluation of the centered difference crossed a kink.
    interval : tuple of float or None
        For a kink entry, ``(low, high)``: the values a correct gradient may
        take with any convention for the slope at the kink.
    unverifiable : bool
        Whether a sample met more than one kink in the entry's two
        evaluations (units of one layer or of several), so that the interval
        need not hold backprop's convention (not compared).
    """

    tensor: str
    index: tuple
    analytic: float
    numerical: float
    error: float
    kink: bool = False
    interval: tuple | None = None
    unverifiable: bool = False

    @property
    def label(self):
        """``"W1[7, 9]"``."""
        return f"{self.tensor}[{', '.join(str(i) for i in self.index)}]"

    def __str__(self):
        numerical = f"numerical {self.numerical:.6g}"
        if self.interval is not None:
            numerical += f" in [{self.interval[0]:.6g}, {self.interval[1]:.6g}]"
        error = "not compared" if np.isnan(self.error) else f"error {self.error:.2e}"
        return f"{self.label}: analytic {self.analytic:.6g}, {numerical} ({error})"

    def to_dict(self):
        """Return a JSON-ready dict (``error`` is None when not compared)."""
        out = {
            "tensor": self.tensor,
            "index": list(self.index),
            "analytic": self.analytic,
            "numerical": self.numerical,
            "error": None if np.isnan(self.error) else self.error,
            "kink": self.kink,
        }
        if self.interval is not None:
            out["interval"] = list(self.interval)
            out["unverifiable"] = self.unverifiable
        return out


@dataclass(frozen=True)
class Direction:
    """One random direction of a directional check: ``v . grad`` both ways."""

    analytic: float
    numerical: float
    error: float
    kink: bool = False

    def to_dict(self):
        """Return a JSON-ready dict."""
        return {
            "analytic": self.analytic,
            "numerical": self.numerical,
            "error": self.error,
            "kink": self.kink,
        }


class TensorReport:
    """How one parameter tensor's gradient compares.

    Attributes
    ----------
    name : str
        ``"W1"``, ``"b1"``, ...
    shape : tuple
        Shape of the parameter.
    checked : int
        Entries computed plus, in directional mode, directions compared.
    entries_checked, directions_checked : int
        The two parts of ``checked``: entries whose centered difference was
        computed (in directional mode, those localized), and directions.
    difference : float
        ``||a - n|| / max(||a|| + ||n||, floor sqrt(compared))`` over the
        compared entries.
    verdict : Verdict
        The worse of the verdicts of ``difference`` and of ``max_error``;
        INCONCLUSIVE when it would pass but some entry could not be compared.
    max_error, median_error : float
        Largest and median entry error of the compared entries.
    bands : dict
        ``{Verdict: count}``: how many entry errors fall in each band.
    kinks : int
        Entries whose centered difference crossed a kink (judged by their
        interval when there is one, else set aside).
    worst : Entry or None
        The entry with the largest error.
    hint : str or None
        The likely mistake, when the verdict is SUSPICIOUS or WRONG.
    directions : list of Direction or None
        The directions compared in directional mode.
    """

    def __init__(
        self,
        *,
        name,
        shape,
        checked,
        difference,
        verdict,
        errors,
        kinks,
        thresholds,
        worst,
        directions=None,
    ):
        self.name = name
        self.shape = shape
        self.checked = checked
        self.directions_checked = 0 if directions is None else len(directions)
        self.entries_checked = checked - self.directions_checked
        self.difference = difference
        self.verdict = verdict
        self.max_error = float(errors.max()) if errors.size else 0.0
        self.kinks = kinks
        self.hint = None
        self.directions = directions
        self._errors = errors
        self._thresholds = thresholds
        self._worst = worst

    @functools.cached_property
    def median_error(self):
        """Median entry error, kinks left out."""
        return _median(self._errors)

    @functools.cached_property
    def bands(self):
        """``{Verdict: count}`` of the entry errors."""
        return self._thresholds.bands(self._errors)

    @functools.cached_property
    def worst(self):
        """The entry with the largest error, or ``None``."""
        return self._worst()

    def __repr__(self):
        return (
            f"TensorReport(name={self.name!r}, shape={self.shape}, checked={self.checked}, "
            f"difference={self.difference:.3e}, verdict={self.verdict.name}, "
            f"kinks={self.kinks}, hint={self.hint!r})"
        )

    def to_dict(self):
        """Return a JSON-ready dict (``difference`` and errors None when nothing was computed)."""
        compared = self.checked > 0  # nothing computed: no number to show (null)
        out = {
            "name": self.name,
            "shape": list(self.shape),
            "checked": self.checked,
            "entries_checked": self.entries_checked,
            "directions_checked": self.directions_checked,
            "difference": self.difference if compared else None,
            "verdict": self.verdict.name,
            "max_error": self.max_error if compared else None,
            "median_error": self.median_error if compared else None,
            "bands": {v.name: n for v, n in self.bands.items()},
            "kinks": self.kinks,
            "worst": None if self.worst is None else self.worst.to_dict(),
            "hint": self.hint,
        }
        if self.directions is not None:
            out["directions"] = [d.to_dict() for d in self.directions]
        return out


class CheckReport:
    """The outcome of :func:`fastgrad.check`.

    Attributes
    ----------
    difference : float
        Relative difference of the whole gradient vector (the course's
        formula) over the compared entries, its denominator floored at
        ``floor sqrt(compared)``.
    verdict : Verdict
        The worst verdict of any tensor (see :class:`~fastgrad.Verdict`):
        INCONCLUSIVE when nothing failed but something was not compared.
    reasons : list of str
        Why the verdict is INCONCLUSIVE (empty otherwise, unless a failure
        outranks it): a loss value that does not match the network (first),
        an interrupted check, tensors with no entry compared, unverifiable
        kink entries, a gradient that vanishes at this point.
    floor, scale : float
        Floor of the entry errors' denominator, ``2.2e-9 scale`` (see
        :mod:`fastgrad._magnitude`), where ``scale`` is the largest sum of
        absolute terms of a gradient entry (at least the largest numerical
        entry).
    vanishing : bool
        Whether the whole gradient is at rounding level here (INCONCLUSIVE).
    tensors : dict
        ``{"W1": TensorReport, ...}`` in network order (built on first use).
    numerical : dict
        ``{"dW1": array, ...}`` numerical gradient; NaN where not computed.
    analytic : dict
        ``{"dW1": array, ...}`` the gradient that was checked.
    kinks : list of Entry
        Entries whose centered difference crossed a relu or leaky relu kink,
        with their interval when the kernel gave one.
    mode, epsilon, batch, loss, thresholds, partial, seconds, hints
        How the check was made; ``partial`` is true when it was interrupted;
        ``hints`` lists every hint, network-wide ones included.

    Parameters
    ----------
    reasons : sequence of str, optional
        Why the check is not established, found before it ran (a loss value
        that does not match the network); they come first in :attr:`reasons`
        and make the verdict at least INCONCLUSIVE.
    hints : sequence of str, optional
        Network-wide findings made outside the comparison (a transposed
        weight layout, a dropout mask left out), listed after the tensors' hints.
    kink_index : int64 ndarray, optional
        The flat indices of the computed entries that crossed a kink,
        ascending; ``kink_lo``, ``kink_hi`` and ``unverifiable`` are then
        given for these entries only. Without it they are per parameter
        (read where ``kinks > 0``).
    """

    def __init__(
        self,
        *,
        net,
        theta,
        analytic,
        numerical,
        checked,
        kinks,
        loss,
        batch,
        epsilon,
        thresholds,
        mode,
        bias_shapes=None,
        partial=False,
        seconds=None,
        directions=None,
        details=None,
        reasons=(),
        hints=(),
        scale=None,
        kink_lo=None,
        kink_hi=None,
        unverifiable=None,
        kink_index=None,
    ):
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
        self._directions = directions or {}
        self._bounds = net.packing.bounds
        largest, numerical_scale = self._judge_kinks(kink_index, kink_lo, kink_hi, unverifiable)
        # per tensor, [compared, unverified, not finite] as Python ints: a network has a
        # few tensors, and each test of them below costs less than numpy's
        self._count_rows = self._counts.tolist()
        self._set_floor(scale, largest, numerical_scale)
        self._stats = self._tensor_stats()
        squares, max_errors, counts = self._stats
        compared = self._compared_counts()
        self.difference = self._difference(np.add.reduce(squares, axis=0), sum(compared))
        differences = self._differences_of(squares, compared)
        # a network has a few tensors: their verdicts in Python's floats and ints
        levels_of = (thresholds.correct, thresholds.acceptable, thresholds.suspicious)
        unverifiable = self._unverifiable_counts()
        levels = []
        for difference, largest, count, open_count in zip(
            differences, max_errors.tolist(), compared, unverifiable, strict=True
        ):
            level = _worse_level(difference, largest, *levels_of)
            if (self.vanishing or count == 0 or open_count > 0) and level < _SUSPICIOUS:
                level = _INCONCLUSIVE
            levels.append(level)
        self._differences = differences
        self._verdicts = [_VERDICTS[level] for level in levels]
        verdict = max(max(levels), _worse_level(self.difference, self.difference, *levels_of))
        self.reasons = [*reasons, *self._inconclusive_reasons(compared)]
        self._extra_hints = list(hints)
        if self.reasons:
            verdict = max(verdict, _INCONCLUSIVE)
        self.verdict = _VERDICTS[verdict]

    def _judge_kinks(self, kink_index, kink_lo, kink_hi, unverifiable):
        """Decide which computed entries are compared, and against what.

        An entry whose evaluations crossed a kink is compared with the nearest
        point of its interval ``[kink_lo, kink_hi]`` (any convention for the
        slope at the kink lies in it), so its error is the analytic value's
        distance from the interval. Without interval information, or where
        the interval does not bound backprop's convention (``unverifiable``),
        it is set aside: not compared, and its tensor cannot pass. An entry
        whose centered difference is not finite (J itself overflowed at
        ``theta +/- eps e_i``) says nothing and is set aside too.

        Returns the largest ``|a| + |n|`` and ``|n|`` of the compared entries,
        for :meth:`_set_floor`.
        """
        size = self._numerical.size
        self._kink_index = np.empty(0, dtype=np.int64)
        self._kink_lo = self._kink_hi = None
        flagged = np.empty(0, dtype=np.bool_)
        if kink_lo is not None:
            if kink_index is None:  # per parameter: kept where a computed entry crossed a kink
                kink_index = np.flatnonzero(self._checked & (self._kink_counts > 0))
                kink_lo, kink_hi = np.asarray(kink_lo)[kink_index], np.asarray(kink_hi)[kink_index]
                if unverifiable is not None:
                    unverifiable = np.asarray(unverifiable)[kink_index]
            self._kink_index = np.asarray(kink_index, dtype=np.int64)
            self._kink_lo = np.asarray(kink_lo, dtype=np.float64)
            self._kink_hi = np.asarray(kink_hi, dtype=np.float64)
            if unverifiable is not None:
                flagged = np.asarray(unverifiable, dtype=bool)
        nothing = np.empty(0)
        bounds = (
            self._kink_index,
            nothing if self._kink_lo is None else self._kink_lo,
            nothing if self._kink_hi is None else self._kink_hi,
            flagged,
        )
        judged = np.empty(self._kink_index.size) if self._kink_index.size else nothing
        # the judge's four per-entry flags, rows of one array
        self._open, self._used, self._unverified, self._not_finite = np.empty((4, size), dtype=bool)
        self._counts = np.empty((len(self._bounds) - 1, 3), dtype=np.int64)
        clipped, largest, scale = judge(
            self._analytic,
            self._numerical,
            self._checked,
            self._kink_counts,
            bounds,
            self._bounds,
            judged,
            (self._open, self._used, self._unverified, self._not_finite),
            self._counts,
        )
        # most checks cross no kink: then the numerical gradient itself is compared
        self._judged = self._numerical
        if clipped:
            self._judged = self._numerical.copy()
            self._judged[self._kink_index] = judged
        return largest, scale

    def _set_floor(self, terms, largest, scale):
        """Set the entry-error floor from the size of the gradient's terms.

        The floor scales with ``terms``, the largest sum of absolute terms of
        a gradient entry (:func:`fastgrad._magnitude.gradient_scale`), or
        without it with the largest numerical entry (``scale``), so it
        vanishes neither with ``J`` nor with a tensor's gradient. When every
        compared ``|a| + |n|`` (at most ``largest``) is at rounding level of
        the terms, the gradient vanishes here and nothing can be established.
        """
        for directions in self._directions.values():
            for d in directions:
                if not d.kink:
                    largest = max(largest, abs(d.analytic) + abs(d.numerical))
                    scale = max(scale, abs(d.numerical))
        self.vanishing = False
        if terms is not None:
            terms = float(terms)
            compared = any([row[0] for row in self._count_rows]) or bool(self._directions)
            self.vanishing = compared and vanishes(largest, terms)
            scale = max(scale, terms)
        self.scale = scale
        self.floor = comparison_floor(scale)

    def _overflow_unit(self):
        """Return ``2**-e`` with ``2**e`` above the largest compared entry of either gradient."""
        used = self._checked & ~self._open
        top = 0.0
        for vector in (self._analytic[used], self._judged[used]):
            finite = np.abs(vector[np.isfinite(vector)])
            top = max(top, float(np.max(finite, initial=0.0)))
        return math.ldexp(1.0, -math.frexp(top)[1]) if top > 0.0 else 1.0

    def _difference(self, squares, count):
        """Return ``||a - n|| / max(||a|| + ||n||, floor sqrt(count))``."""
        gap, a2, n2 = squares.tolist()
        scale = max(math.sqrt(a2) + math.sqrt(n2), self.floor * self._unit * math.sqrt(count))
        return math.sqrt(gap) / scale if scale > 0.0 else 0.0

    def _differences_of(self, squares, counts):
        """Return :meth:`_difference` of every row of ``squares``, a list of floats."""
        # one tensor at a time in Python's floats: the same correctly rounded operations as
        # numpy's, at less cost for the few tensors of a network
        floor = self.floor * self._unit
        out = []
        for (gap, a2, n2), count in zip(squares.tolist(), counts, strict=True):
            norms = math.sqrt(a2) + math.sqrt(n2)
            least = floor * math.sqrt(count)
            scale = least if least > norms else norms  # max() as Python takes it, NaN included
            out.append(math.sqrt(gap) / scale if scale > 0.0 else 0.0)
        return out

    def _unverifiable_counts(self):
        """Per tensor, computed entries that could not be compared (and block a pass): a list."""
        return [unverified + not_finite for _, unverified, not_finite in self._count_rows]

    def _compared_counts(self):
        """Per tensor, the entries and directions that count in its verdict: a list of ints."""
        out = [row[0] for row in self._count_rows]
        if self._directions:
            for t, name in enumerate(self.net.packing.names):
                directions = self._directions.get(name) or []
                out[t] += sum(1 for d in directions if not d.kink)
        return out

    def _inconclusive_reasons(self, counts):
        """Say why the check cannot pass: what was not compared, or could not be."""
        reasons = []
        if self.partial:
            reasons.append(
                f"the check was interrupted: {self.checked:,} of the requested entries were "
                "computed; the rest were not compared"
            )
        if self.vanishing:
            reasons.append(
                "the gradient vanishes at this point (its largest entry is at rounding level "
                "of the terms it sums); check at another (e.g. at initialization)"
            )
        packing = self.net.packing
        names = [n for n, c in zip(packing.names, counts, strict=True) if c == 0]
        if names:
            kinked = [n for n in names if np.any(self._kink_counts[packing.slice(n)])]
            reached = "no entry compared" if not kinked else "no entry compared (kinks only)"
            reasons.append(f"{', '.join(names)}: {reached}")
        if not any([unverified or not_finite for _, unverified, not_finite in self._count_rows]):
            return reasons
        for name, (_, count, overflows) in zip(packing.names, self._count_rows, strict=True):
            if count and name not in names:
                reasons.append(
                    f"{name}: {count:,} entries have a sample that meets more than one kink, "
                    "where backprop's convention need not lie between the one-sided "
                    "differences; they are not compared"
                )
            if overflows:
                reasons.append(
                    f"{name}: {overflows:,} entries have a centered difference that is not finite "
                    "(J overflows at theta +/- epsilon e_i); they are not compared"
                )
        return reasons

    def _tensor_stats(self):
        """Per tensor: squared norms (gap, a, n), largest error, number compared.

        One compiled pass over the flat vectors (which also fills the entry
        errors), plus, in directional mode, the directions of each tensor.
        """
        packing = self.net.packing
        starts = self._bounds
        n_tensors = len(packing.names)
        self._errors = np.empty(packing.size)
        squares = np.empty((n_tensors, 3))
        max_errors = np.empty(n_tensors)
        counts = np.empty(n_tensors, dtype=np.int64)
        analytic, judged, unit = self._analytic, self._judged, 1.0
        for _ in range(2):
            compare(
                analytic,
                judged,
                self._checked,
                self._open,
                starts,
                self.floor * unit,
                self._errors,
                squares,
                max_errors,
                counts,
            )
            if unit != 1.0 or all(map(math.isfinite, squares.ravel().tolist())):
                break
            # squares of entries beyond 1e154 overflow: compare again in units of a power of
            # two near the largest entry, which leaves every ratio (and entry error) exact
            unit = self._overflow_unit()
            analytic, judged = self._analytic * unit, self._judged * unit
        self._unit = unit
        for t, name in enumerate(packing.names if self._directions else ()):
            directions = self._directions.get(name)
            if directions is None:
                continue
            kept = [d for d in directions if not d.kink]
            squares[t] += squared_norms(
                [d.analytic * unit for d in kept], [d.numerical * unit for d in kept]
            )
            max_errors[t] = max([max_errors[t], *(d.error for d in kept)])
            counts[t] += len(directions)
        return squares, max_errors, counts

    @functools.cached_property
    def tensors(self):
        """``{"W1": TensorReport, ...}`` in network order."""
        squares, _, counts = self._stats
        out = {}
        for t, name in enumerate(self.net.packing.names):
            part = self.net.packing.slice(name)
            index = np.flatnonzero(self._used[part])
            errors = self._errors[part][index]
            directions = self._directions.get(name)
            if directions is not None:
                errors = np.concatenate([[d.error for d in directions if not d.kink], errors])
            out[name] = TensorReport(
                name=name,
                shape=self._bias_shapes.get(name, self.net.packing.user_shape(name)),
                checked=int(counts[t]),
                difference=float(self._differences[t]),
                verdict=self._verdicts[t],
                errors=errors,
                kinks=int(np.count_nonzero(self._kink_counts[part])),
                thresholds=self.thresholds,
                worst=functools.partial(self._worst_of, name, part, index),
                directions=directions,
            )
        failing = [t for t in out.values() if t.verdict >= Verdict.SUSPICIOUS]
        for report in failing:
            report.hint = tensor_hint(self, report.name)
        self._where = network_hint(self.net, out) if failing else None
        for report in failing:
            if report.hint is None:
                report.hint = self._where
        return out

    def add_hint(self, hint):
        """Add a network-wide finding made outside the comparison to :attr:`hints`."""
        self._extra_hints.append(str(hint))
        self.__dict__.pop("hints", None)

    @functools.cached_property
    def hints(self):
        """Every hint, ``"W2: ..."``, tensors sharing a hint grouped, network-wide last."""
        tensors = self.tensors
        where = self._where
        grouped = {}
        for t in tensors.values():
            if t.hint:
                grouped.setdefault(t.hint, []).append(t.name)
        hints = [f"{', '.join(names)}: {hint}" for hint, names in grouped.items()]
        if where and where not in grouped:
            hints.append(where)
        hints.extend(h for h in self._extra_hints if h not in hints)
        return hints

    def _worst_of(self, name, part, index):
        if index.size == 0:
            return None
        flat = int(index[np.argmax(self._errors[part][index])])
        return self._entry(name, self.net.packing.shapes[name], part, flat)

    def _entry(self, name, shape, part, flat):
        """Return entry ``flat`` of tensor ``name``, with the error the compare kernel wrote."""
        at = part.start + flat
        kink = bool(self._kink_counts[at] > 0)
        interval = None
        p = int(np.searchsorted(self._kink_index, at))
        if kink and p < self._kink_index.size and self._kink_index[p] == at:
            interval = (float(self._kink_lo[p]), float(self._kink_hi[p]))
        # a bias is indexed in the shape it was given in: (n,), (n, 1) or (1, n)
        shape = self._bias_shapes.get(name, shape)
        return Entry(
            tensor=name,
            index=self.net.packing.user_index(
                name, tuple(int(i) for i in np.unravel_index(flat, shape))
            ),
            analytic=float(self._analytic[at]),
            numerical=float(self._numerical[at]),
            error=float(self._errors[at]),
            kink=kink,
            interval=interval,
            unverifiable=bool(self._unverified[at]),
        )

    # --- views -------------------------------------------------------------------------

    def tensor_arrays(self, name):
        """Return ``(analytic, numerical, checked, kinks, param)`` arrays of one tensor.

        Weights come in the user's layout (transposed views for ``weights="in_out"``).
        """
        packing = self.net.packing
        part = packing.slice(name)
        shape = packing.shapes[name]
        flip = packing.user_shape(name) != shape
        arrays = (self._analytic, self._numerical, self._checked, self._kink_counts, self._theta)
        return tuple(a[part].reshape(shape).T if flip else a[part].reshape(shape) for a in arrays)

    def compared(self, name=None):
        """Return what the verdict was read from, as arrays in a tensor's user shape.

        Parameters
        ----------
        name : str, optional
            A tensor (``"W1"``); the whole flat gradient when omitted.

        Returns
        -------
        used : bool ndarray
            Entries compared (computed and not set aside).
        analytic, judged, errors : ndarray
            The analytic gradient; the value it was compared with (the
            numerical gradient, or for a kink entry the nearest point of its
            interval); the entry errors (NaN where not compared).
        """
        arrays = (self._used, self._analytic, self._judged, self._errors)
        if name is None:
            return arrays
        packing = self.net.packing
        part, shape = packing.slice(name), packing.shapes[name]
        flip = packing.user_shape(name) != shape  # weights="in_out": the user's layout
        return tuple(a[part].reshape(shape).T if flip else a[part].reshape(shape) for a in arrays)

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
        """Entries whose centered difference crossed a kink, in network order.

        Each carries its interval when the kernel gave one: such entries are
        judged by the analytic value's distance from it and count in the
        verdict; the others are set aside (error NaN) and keep their tensor
        from passing.
        """
        out = []
        for name in self.net.packing.names:
            part = self.net.packing.slice(name)
            for flat in np.flatnonzero(self._checked[part] & (self._kink_counts[part] > 0)):
                out.append(self._entry(name, self.net.packing.shapes[name], part, int(flat)))
        return out

    @property
    def kink_summary(self):
        """One sentence on the entries that crossed a kink, or ``None`` when none did."""
        kinked = self._checked & (self._kink_counts > 0)
        total = int(np.count_nonzero(kinked))
        if total == 0:
            return None
        left_out = int(np.count_nonzero(kinked & self._open))
        if left_out == total:
            how = "are left out of the verdict (no interval to judge them by)"
        elif left_out == 0:
            how = "are judged by the analytic value's distance from their interval"
        else:
            how = (
                f"are judged by their interval, {left_out:,} of them left out (a sample "
                "meeting more than one kink)"
            )
        return f"{total:,} entries crossed a kink at +/-epsilon and {how} (report.kinks lists them)"

    @property
    def coverage(self):
        """What was computed, in words: ``"8 of 17,098 entries computed"``.

        In directional mode, directions and localized entries are said apart.
        """
        entries = f"{self.checked:,} of {self.net.n_params:,} entries"
        if self.mode != "directional":
            return f"{entries} computed"
        per_tensor = self.details.get("directions")
        counts = [len(d) for d in self._directions.values()]
        if per_tensor and all(count == per_tensor for count in counts):
            said = f"{per_tensor} directions per tensor"
        elif per_tensor:
            said = f"{sum(counts):,} directions (up to {per_tensor} per tensor)"
        else:
            said = f"{sum(counts):,} directions"
        return f"{said} compared, {entries} localized"

    @property
    def checked(self):
        """Number of entries whose numerical gradient was computed."""
        return int(self._checked.sum())

    def worst(self, k=10):
        """Return the ``k`` compared entries with the largest errors, worst first.

        Entries set aside (kinks without an interval, unverifiable ones) are
        left out (see :attr:`kinks`); kink entries judged by their interval are in.
        """
        if not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"k must be a non-negative integer; got {k!r}")
        index = np.flatnonzero(self._used)
        errors = self._errors[index]
        order = np.argsort(-errors, kind="stable")[:k]
        out = []
        for flat in index[order]:
            name = self.net.packing.tensor_at(int(flat))
            part = self.net.packing.slice(name)
            out.append(
                self._entry(name, self.net.packing.shapes[name], part, int(flat) - part.start)
            )
        return out

    # --- output ------------------------------------------------------------------------

    def to_dict(self):
        """Return the report as a JSON-ready dict (no arrays)."""
        kinks = self.kinks
        return {
            "network": {
                "sizes": list(self.net.sizes),
                "hidden": self.net.hidden_entries,
                "output": self.net.output,
                "loss": self.net.loss_name,
                "l2": self.net.l2,
                "dropout": list(self.net.dropout),
                "reduction": self.net.reduction,
                "weights": self.net.weights,
                "objective": self.net.formula(),
                "n_params": self.net.n_params,
            },
            "mode": self.mode,
            "epsilon": self.epsilon,
            "batch": self.batch,
            "loss": self.loss,
            "thresholds": {
                "correct": self.thresholds.correct,
                "acceptable": self.thresholds.acceptable,
                "suspicious": self.thresholds.suspicious,
            },
            "checked": self.checked,
            "partial": self.partial,
            "seconds": self.seconds,
            "difference": self.difference if self.checked else None,
            "verdict": self.verdict.name,
            "reasons": list(self.reasons),
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
        return (
            f"<CheckReport {self.verdict.name} difference={self.difference:.3e} "
            f"mode={self.mode!r} checked={self.checked}>"
        )

    def __str__(self):
        from ._format import format_report

        return format_report(self)

    def _repr_html_(self):
        from ._html import report_html

        return report_html(self)
