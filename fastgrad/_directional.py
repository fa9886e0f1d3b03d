"""Directional checks: random directions per tensor, bisection to find wrong entries.

A directional check compares ``v . a`` (the analytic gradient along a unit
direction ``v`` that moves one tensor) with the centered difference
``(J(theta + eps v) - J(theta - eps v)) / (2 eps)``. It costs two evaluations
per direction instead of two per entry. When a direction disagrees, the
tensor is cut in halves, each half is checked along a random direction of its
restriction of the disagreeing direction, and the halves that carry its gap
are cut again, down to a few entries that are then differenced one by one.
When errors are everywhere (a scaled tensor, say), bisection stops early and
a stratified sample of entries is differenced instead, so that the report
can still say what the mistake looks like.
"""

import numpy as np

from ._magnitude import FLOOR_RATIO
from ._passes import directional_differences
from .numerical import Differences
from .report import Direction
from .thresholds import Verdict, entry_errors

LEAF = 8
"""Regions this small are differenced entry by entry."""

MAX_REGIONS = 8
"""More disagreeing regions than this at one level means the errors are spread out."""

SPREAD_SAMPLE = 64
"""Entries differenced when errors are spread over a tensor."""

BLOCK_FLOATS = 1 << 20
"""Values of the random directions drawn and compared at once (8 MiB)."""

WHOLE_TENSOR_WORK = 4_000_000
"""Entry-samples up to which a tensor whose localized entries all agree is
differenced whole, so that its disagreement is found if any entry holds it."""


class _Directions:
    """Runs the directional kernel for one layer of a workspace."""

    def __init__(self, work, epsilon):
        self.work = work
        self.epsilon = epsilon
        self.head = work.head()

    def compare(self, name, vectors):
        """Return ``(numerical, kinked)`` directional derivatives for unit ``vectors``.

        ``vectors`` is ``(k, size)``: directions in the flat space of tensor ``name``.
        """
        work = self.work
        packing = work.net.packing
        layer = packing.layer(name)
        n_out, n_in = int(work.sizes[layer]), int(work.sizes[layer - 1])
        k = vectors.shape[0]
        if not packing.is_bias(name):
            weight_dirs = vectors.reshape(k, n_out, n_in)
            bias_dirs = np.zeros((k, n_out))
        else:
            weight_dirs = None
            bias_dirs = vectors
        out = np.empty((work.batch, k))
        kinks = np.zeros((work.batch, k), dtype=np.int64)
        directional_differences(
            layer,
            weight_dirs,
            bias_dirs,
            self.epsilon,
            work.network,
            self.head,
            work.loss_code,
            out,
            kinks,
        )
        numerical = out.sum(axis=0) / (2.0 * self.epsilon * work.batch)
        if work.scale != 1.0:
            numerical *= work.scale
        if not packing.is_bias(name) and work.l2:
            param = work.theta[packing.slice(name)]
            numerical += work.l2 / work.batch * (vectors @ param)
        return numerical, kinks.sum(axis=0) > 0


def _random_directions(rng, k, size):
    vectors = rng.normal(size=(k, size))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0.0, 1.0, norms)


def _compare_random(runner, name, a_tensor, count, rng, thresholds, floor_of):
    """Compare ``count`` random unit directions of tensor ``name``, a block at a time.

    Directions are drawn and compared in blocks of at most
    :data:`BLOCK_FLOATS` values, so memory stays bounded whatever ``count``;
    the directions and their results are those of one draw of ``count`` rows.

    Returns
    -------
    along, numerical, errors : ndarray
        Per direction: ``v . a``, the centered difference and their error.
    kinked : bool ndarray
        Per direction: whether an evaluation crossed a kink.
    worst : dict
        ``{Verdict.SUSPICIOUS: v, Verdict.ACCEPTABLE: v}``: the direction of
        largest error among the unkinked ones at or above SUSPICIOUS, and among
        the ACCEPTABLE ones; ``None`` where there are none.
    """
    size = a_tensor.size
    block = max(1, min(count, BLOCK_FLOATS // size))
    parts = []
    worst = {Verdict.SUSPICIOUS: None, Verdict.ACCEPTABLE: None}
    largest = {Verdict.SUSPICIOUS: -1.0, Verdict.ACCEPTABLE: -1.0}
    for start in range(0, count, block):
        vectors = _random_directions(rng, min(block, count - start), size)
        numerical, kinked = runner.compare(name, vectors)
        # row by row, so that a direction's value does not depend on its block
        along = (vectors * a_tensor).sum(axis=1)
        errors = entry_errors(along, numerical, floor_of(vectors))
        for d, error in enumerate(errors):
            if kinked[d]:
                continue
            level = min(thresholds.classify(error), Verdict.SUSPICIOUS)
            if level in worst and error > largest[level]:
                worst[level], largest[level] = vectors[d].copy(), error
        parts.append((along, numerical, kinked, errors))
    columns = zip(*parts, strict=True)
    along, numerical, kinked, errors = (np.concatenate(column) for column in columns)
    return along, numerical, kinked, errors, worst


def _localize(directions, name, a_tensor, direction, thresholds, floor_of):
    """Return flat indices of tensor ``name`` that hold the disagreement along ``direction``.

    Each region is cut in halves, and each half checked along ``direction``
    restricted to it. The halves' gaps ``v_h . a - (v_h . grad J)`` add up to
    their region's, so the entries that make the disagreement are always in
    a half whose gap is above the noise, or, when both halves are below it,
    in the one with the larger gap: the trail is never lost. Regions of at
    most :data:`LEAF` entries are returned to be differenced one by one;
    more than :data:`MAX_REGIONS` disagreeing regions at one level mean the
    errors are spread out, and ``None`` is returned.
    """
    regions = [np.arange(a_tensor.size)]
    leaves = []
    while regions:
        pairs = []
        for region in regions:
            if region.size <= LEAF:
                leaves.append(region)
            else:
                middle = region.size // 2
                pairs.append((region[:middle], region[middle:]))
        if not pairs:
            break
        halves = [half for pair in pairs for half in pair]
        vectors = np.zeros((len(halves), a_tensor.size))
        for row, half in zip(vectors, halves, strict=True):
            row[half] = direction[half]
        numerical, _ = directions.compare(name, vectors)
        along = vectors @ a_tensor
        gaps = np.abs(along - numerical)
        noise = np.maximum(
            thresholds.correct * (np.abs(along) + np.abs(numerical)), floor_of(vectors)
        )
        regions = []
        for p, pair in enumerate(pairs):
            first, second = 2 * p, 2 * p + 1
            kept = [pair[i] for i, h in enumerate((first, second)) if gaps[h] > noise[h]]
            if not kept:
                kept = [pair[0] if gaps[first] >= gaps[second] else pair[1]]
            regions.extend(kept)
        if len(regions) > MAX_REGIONS:
            return None
    return np.concatenate(leaves) if leaves else np.zeros(0, dtype=np.int64)


def _kinks_hide(kinked, errors, thresholds):
    """Whether kinked directions leave a tensor unjudged: all are kinked, or one disagrees."""
    disagree = np.array([thresholds.classify(e) >= Verdict.SUSPICIOUS for e in errors])
    return bool(np.all(kinked) or np.any(kinked & disagree))


def _spread_sample(size, rng):
    """Return a stratified sample of entries of a tensor whose errors are spread out."""
    count = min(size, SPREAD_SAMPLE)
    edges = np.linspace(0, size, count + 1).astype(np.int64)
    return np.unique(edges[:-1] + (rng.random(count) * np.diff(edges)).astype(np.int64))


def directional_comparison(work, analytic, epsilon, k, rng, thresholds, magnitude):
    """Compare ``k`` random directions per tensor; localize disagreements.

    A tensor whose directions all cross kinks, or whose kinked directions
    disagree, is differenced entry by entry (whole when it costs at most
    :data:`WHOLE_TENSOR_WORK` entry-samples, else a spread sample): a
    direction that crosses kinks can be neither compared nor bisected.

    Parameters
    ----------
    work : Workspace
    analytic : ndarray
        The flat gradient to check.
    epsilon : float
    k : int
        Directions per tensor.
    rng : numpy.random.Generator
    thresholds : Thresholds
    magnitude : ndarray
        :func:`fastgrad._magnitude.gradient_magnitude` of ``work``: along a
        direction ``v`` the rounding floor is ``FLOOR_RATIO |v| . magnitude``.

    Returns
    -------
    directions : dict
        ``{name: [Direction, ...]}``.
    entries : ndarray
        Flat indices of the entries differenced one by one (localized).
    values, kinks : ndarray
        Their numerical gradient and kink counts.
    differences : Differences or None
        The run that differenced them (it may carry kink intervals), or
        ``None`` when no entry was.
    """
    packing = work.net.packing
    runner = _Directions(work, epsilon)
    results = {}
    suspects = {}
    doubts = set()  # tensors localized from ACCEPTABLE directions only
    for name in packing.names:
        part = packing.slice(name)
        a_tensor = analytic[part]
        terms = magnitude[part]

        def floor_of(vectors, terms=terms):
            return FLOOR_RATIO * np.einsum("kn,n->k", np.abs(vectors), terms)

        along, numerical, kinked, errors, worst = _compare_random(
            runner, name, a_tensor, min(k, a_tensor.size), rng, thresholds, floor_of
        )
        results[name] = [
            Direction(analytic=float(a), numerical=float(n), error=float(e), kink=bool(c))
            for a, n, e, c in zip(along, numerical, errors, kinked, strict=True)
        ]
        failing, doubtful = worst[Verdict.SUSPICIOUS], worst[Verdict.ACCEPTABLE]
        if failing is not None or doubtful is not None:
            direction = failing if failing is not None else doubtful
            found = _localize(runner, name, a_tensor, direction, thresholds, floor_of)
            if found is None:
                found = _spread_sample(a_tensor.size, rng)
            suspects[name] = part.start + found
            if failing is None:
                doubts.add(name)
        elif np.any(kinked) and _kinks_hide(kinked, errors, thresholds):
            # a direction that crosses kinks cannot be compared (nor bisected); single
            # entries cross fewer and are judged by their interval
            if a_tensor.size * work.batch <= WHOLE_TENSOR_WORK:
                found = np.arange(a_tensor.size)
            else:
                found = _spread_sample(a_tensor.size, rng)
            suspects[name] = part.start + found
    if not suspects:
        nothing = np.zeros(0, dtype=np.int64)
        return results, nothing, np.zeros(0), nothing, None
    differences, values, kinks = _difference(work, epsilon, np.concatenate(list(suspects.values())))
    failed = {name: found for name, found in suspects.items() if name not in doubts}
    lost = _trail_lost(work, analytic, failed, differences.entries, values, magnitude, thresholds)
    if lost:
        whole = [np.arange(packing.slice(n).start, packing.slice(n).stop) for n in lost]
        differences, values, kinks = _difference(
            work, epsilon, np.concatenate([differences.entries, *whole])
        )
    return results, differences.entries, values, kinks, differences


def _difference(work, epsilon, entries):
    differences = Differences(work, epsilon, entries)
    values, kinks, _ = differences.compute()
    return differences, values, kinks


def _trail_lost(work, analytic, suspects, entries, values, magnitude, thresholds):
    """Return the tensors whose localized entries all agree, small enough to difference whole.

    Bisection along the disagreeing direction always ends somewhere, but a
    disagreement spread thinly over many entries can leave no single one
    above the ACCEPTABLE level; such a tensor is then differenced entry by
    entry when that costs at most :data:`WHOLE_TENSOR_WORK` entry-samples.
    """
    packing = work.net.packing
    floor = FLOOR_RATIO * float(np.max(magnitude, initial=0.0))
    errors = entry_errors(analytic[entries], values, floor)
    lost = []
    for name in suspects:
        part = packing.slice(name)
        mine = (entries >= part.start) & (entries < part.stop)
        if np.any(errors[mine] >= thresholds.acceptable):
            continue
        if (part.stop - part.start) * work.batch <= WHOLE_TENSOR_WORK:
            lost.append(name)
    return lost
