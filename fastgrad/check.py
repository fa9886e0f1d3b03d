"""``check``: compare a network's analytic gradient with centered differences."""

import contextlib
import numbers
import time
import warnings

import numba
import numpy as np

from . import _scratch
from ._directional import directional_comparison
from ._magnitude import gradient_magnitude, gradient_scale
from ._matching import dropout_hint, layout_hint, loss_mismatch, user_loss
from ._progress import reports_progress
from ._step import StepWarning, step_advice
from .numerical import DEFAULT_EPSILON, Differences, check_epsilon, check_method
from .report import CheckReport
from .thresholds import Thresholds

__all__ = ["check"]

MODES = ("full", "sample", "directional")
DEFAULT_SAMPLES = 32
DEFAULT_DIRECTIONS = 4
INTERRUPT_WORK = 50_000_000
"""Entry-samples above which the work is split into chunks so that Ctrl-C stops it."""


_AS_IT_IS = contextlib.nullcontext()  # reusable: enters and exits any number of times


def threads_limited(threads):
    """Run the body with ``numba.set_num_threads(threads)``, restoring it after.

    With ``threads=None`` the body runs as it is (a no-op context).
    """
    if threads is None:
        return _AS_IT_IS
    return _threads_set(threads)


@contextlib.contextmanager
def _threads_set(threads):
    """Set ``threads`` numba threads for the body of :func:`threads_limited`, then restore."""
    if (
        not isinstance(threads, numbers.Integral)
        or not 1 <= threads <= numba.config.NUMBA_NUM_THREADS
    ):
        raise ValueError(
            f"threads must be an integer in 1..{numba.config.NUMBA_NUM_THREADS}; got {threads!r}"
        )
    before = numba.get_num_threads()
    numba.set_num_threads(int(threads))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def analytic_vector(net, work, grads):
    """Return the gradient to check as a flat vector: the user's, or fastgrad's backprop."""
    if grads is None:
        return work.gradient()
    theta, _ = net.packing.pack(grads, prefix="d", what="grads")
    return theta


def sample_entries(packing, k, rng):
    """Pick ``k`` entries per tensor, one from each of ``k`` equal strata of its flat range."""
    chosen = []
    for name in packing.names:
        part = packing.slice(name)
        size = part.stop - part.start
        if size <= k:
            chosen.append(np.arange(part.start, part.stop))
            continue
        edges = np.linspace(0, size, k + 1).astype(np.int64)
        picks = edges[:-1] + (rng.random(k) * np.diff(edges)).astype(np.int64)
        chosen.append(part.start + picks)
    return np.concatenate(chosen)


def _count(name, value, default):
    if value is None:
        return default
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _seed(seed):
    if type(seed) is int and seed >= 0:  # the common case, without the ABC's test
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer; got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def check(
    net,
    params,
    X,
    Y,
    grads=None,
    *,
    epsilon=DEFAULT_EPSILON,
    mode="full",
    k=None,
    seed=0,
    thresholds=None,
    layout="rows",
    progress=None,
    threads=None,
    loss=None,
    dropout_masks=None,
    weights=None,
    client=None,
    method="exact",
):
    """Check a gradient of a network against centered differences.

    Parameters
    ----------
    net : MLP
        The network.
    params : dict
        ``{"W1": ..., "b1": ..., ...}``.
    X, Y : array_like
        A batch, as for :meth:`MLP.loss`.
    grads : dict, optional
        ``{"dW1": ..., "db1": ..., ...}``: the gradient to check, from the
        user's backprop. When omitted, fastgrad's own backprop is checked.
    epsilon : float, default 1e-7
        Step of the centered differences (see :func:`numerical_gradient`).
    mode : {"full", "sample", "directional"}, default "full"
        ``"full"`` computes every entry; ``"sample"`` ``k`` entries per tensor
        (one from each of ``k`` equal strata, seeded); ``"directional"``
        compares ``v . grad`` with ``(J(theta + eps v) - J(theta - eps v)) / 2 eps``
        for ``k`` random unit directions per tensor and, where they disagree,
        localizes the wrong entries by bisection.
    k : int, optional
        Entries (sample mode, default 32) or directions (directional mode,
        default 4) per tensor, at most each tensor's size: a tensor of ``n``
        entries has all of them computed, or ``n`` directions compared.
    seed : int, default 0
        Seed of the sampled entries and random directions.
    thresholds : Thresholds, dict or 3 numbers, optional
        Verdict levels; by default 1e-7, 1e-4, 1e-2.
    layout : {"rows", "columns"}, default "rows"
        Whether samples are rows or columns of ``X`` and ``Y``.
    progress : callable, optional
        Called as ``progress(done, total)`` while a long check runs.
    threads : int, optional
        Number of threads for the kernels (restored afterwards).
    loss : float, optional
        Your own ``J`` at ``theta`` (from your forward pass). When it is not
        the described network's ``J`` to rounding (relative 1e-5), the
        gradients are not compared: the report is INCONCLUSIVE, its first
        reason says so and the next names the nearby description (hidden
        activations, output/loss and ``reduction``, weight or data layout,
        L2, dropout off) whose ``J`` matches, if one does; with the network's
        dropout and no ``dropout_masks``, it says to pass yours.
    dropout_masks : sequence of array_like, optional
        Your own 0/1 dropout keep-masks, one per hidden layer, shaped like
        that layer's activations in ``layout``; kept units are scaled by the
        network's ``1 / (1 - p)`` (see :meth:`MLP.loss`).
    weights : {"out_in", "in_out"}, optional
        Read the weights as stored ``(n_out, n_in)`` or ``(n_in, n_out)``;
        by default as the network says (``MLP(..., weights=...)``).
    client : dask.distributed.Client, optional
        Run the parameter loop of a full or sampled check on this Dask
        cluster's workers (needs ``fastgrad[dask]``; see
        :mod:`fastgrad.distributed`). The report is the local one to the bit;
        progress is reported as ranges of tasks finish. A directional check
        runs locally. Each worker uses as many threads as it has, so
        ``threads`` does not apply.
    method : {"exact", "direct"}, default "exact"
        How full and sample modes evaluate each ``J(theta +- eps e_i)``:
        ``"exact"`` by the fastest exact path (power series where a bound
        certifies them), ``"direct"`` carried layer by layer as differences,
        relying on no derivative formula (see :func:`numerical_gradient`).
        ``report.details["paths"]`` says how many entry-samples each path
        produced. Directional mode always carries its directions layer by
        layer.

    Returns
    -------
    CheckReport
        Per-tensor differences and verdicts, the worst entries, hints,
        kinks. Pressing Ctrl-C during a long full or sampled check returns the
        report of the part that was done, marked ``partial``.

    Warns
    -----
    StepWarning
        When ``epsilon`` is so large that the truncation error or the number
        of kink crossings makes the verdict weak; it names the step to use
        (also in ``report.details["step"]``).

    Examples
    --------
    >>> import numpy as np
    >>> import fastgrad as fg
    >>> net = fg.MLP([4, 5, 3], hidden="tanh")
    >>> params = net.init("xavier_normal", seed=0)
    >>> X = np.random.default_rng(0).normal(size=(6, 4))
    >>> y = np.array([0, 1, 2, 0, 1, 2])
    >>> grads = net.gradients(params, X, y)
    >>> grads["dW2"] = grads["dW2"] * 6          # a forgotten 1/m
    >>> report = fg.check(net, params, X, y, grads)
    >>> report.verdict
    <Verdict.WRONG: 4>
    >>> report.tensors["W2"].hint
    'analytic = 6 x numerical, x m = 6: a missing 1/m?'
    """
    started = time.perf_counter()
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if mode == "full" and k is not None:
        raise ValueError(
            "k applies to mode='sample' (entries) or 'directional' (directions), not to mode='full'"
        )
    epsilon = check_epsilon(epsilon)
    check_method(method)
    thresholds = Thresholds.coerce(thresholds)
    if client is not None:
        from .distributed import check_client

        check_client(client)
        if threads is not None:
            raise ValueError("threads applies to a local check; a client's workers use their own")
    if weights is not None and weights != net.weights:
        net = net.replace(weights=weights)
    # a local check reuses the working arrays of the last one on this network (none of them
    # reaches the report); a cluster's workers may still read them after a Ctrl-C
    local = client is None
    scratch = _scratch.take(net) if local else None
    spare = net._take_spare() if local else {}
    work, bias_shapes = net.workspace(params, X, Y, layout, dropout_masks, **spare)
    analytic = analytic_vector(net, work, grads)
    threads = _count("threads", threads, None)
    seed = _seed(seed)
    details = {"threads": numba.get_num_threads() if threads is None else threads}
    reasons = []
    if loss is not None:
        reasons = loss_mismatch(
            net, params, X, Y, layout, dropout_masks, user_loss(loss), work.loss()
        )
    # before the differences: a first-ever check compiles these while the finite-difference
    # kernel may still be compiling in a child process (fastgrad._precompile)
    objective = work.loss()
    scale = gradient_scale(work)
    with threads_limited(threads):
        if reasons:
            found = _nothing_found(net.packing.size)
        elif mode == "directional":
            found = _directional_check(work, analytic, epsilon, k, seed, thresholds, details)
        else:
            found = _entry_check(
                work, epsilon, mode, k, seed, progress, details, client, method, scratch
            )
    advice = step_advice(work, epsilon, thresholds, found["kinks"], found["checked"])
    for sentence in advice:
        warnings.warn(sentence, StepWarning, stacklevel=2)
    if advice:
        details["step"] = advice
    report = CheckReport(
        net=net,
        theta=work.theta,
        analytic=analytic,
        loss=objective,
        batch=work.batch,
        epsilon=epsilon,
        thresholds=thresholds,
        mode=mode,
        bias_shapes=bias_shapes,
        seconds=time.perf_counter() - started,
        details=details,
        reasons=reasons,
        scale=scale,
        **found,
    )
    if grads is not None and report.verdict.failed:
        _reading_hints(report, work, analytic, (params, X, Y, grads, layout, dropout_masks))
    if local:
        net._give_back(work)
        _scratch.give_back(net, scratch)
    return report


def _reading_hints(report, work, analytic, given):
    """Try the readings of the user's gradients that explain a whole failure exactly."""
    net = report.net
    params, X, Y, grads, layout, dropout_masks = given
    weights = [t for t in report.tensors.values() if t.name.startswith("W")]
    if all(t.verdict.failed for t in weights):
        hint = layout_hint(net, params, X, Y, grads, layout, dropout_masks)
        if hint:
            report.add_hint(hint)
    hint = dropout_hint(work, analytic)
    if hint:
        report.add_hint(hint)


def _nothing_found(size):
    """Return the per-entry results of a check that computed no entry."""
    return {
        "numerical": np.full(size, np.nan),
        "checked": np.zeros(size, dtype=bool),
        "kinks": np.zeros(size, dtype=np.int32),
    }


def _entry_check(
    work, epsilon, mode, k, seed, progress, details, client=None, method="exact", scratch=None
):
    """Full and sample modes: centered differences of every or of sampled entries.

    The kernel runs in chunks when progress is reported or the work is long
    enough to be worth interrupting; Ctrl-C keeps the chunks already done.
    With a Dask ``client`` it runs on the cluster's workers instead. The
    working arrays come from ``scratch`` (:mod:`fastgrad._scratch`) when given.
    """
    entries = None
    if mode == "sample":
        k = _count("k", k, DEFAULT_SAMPLES)
        entries = sample_entries(work.net.packing, k, np.random.default_rng(seed))
        details["samples_per_tensor"] = k
    details["method"] = method
    if client is not None:
        from . import distributed

        differences, values, entry_kinks, computed, info = distributed.compute(
            client, work, epsilon, entries, progress, interruptible=True, method=method
        )
        details.update(info)
        found = differences.spread(values, entry_kinks, computed)
        found["partial"] = not computed.all()
        details["paths"] = dict(differences.paths)
        return found
    differences = Differences(work, epsilon, entries, method=method, scratch=scratch)
    n_entries = differences.size
    work_size = n_entries * work.batch
    n_chunks = 1
    if progress is not None and reports_progress(n_entries, work.batch):
        n_chunks = min(100, differences.n_tasks)
    elif work_size > INTERRUPT_WORK:
        n_chunks = min(8, differences.n_tasks)
    values, entry_kinks, done = differences.compute(progress, n_chunks=n_chunks, interruptible=True)
    found = differences.spread(values, entry_kinks, done)
    found["partial"] = done < n_entries
    if getattr(differences, "paths", None) is not None:
        details["paths"] = dict(differences.paths)
    return found


def _directional_check(work, analytic, epsilon, k, seed, thresholds, details):
    """Directional mode: random directions per tensor, bisection where they disagree."""
    k = _count("k", k, DEFAULT_DIRECTIONS)
    magnitude = gradient_magnitude(work)
    directions, entries, values, entry_kinks, differences = directional_comparison(
        work, analytic, epsilon, k, np.random.default_rng(seed), thresholds, magnitude
    )
    packing = work.net.packing
    largest = max(packing.slice(name).stop - packing.slice(name).start for name in packing.names)
    details["directions"] = min(k, largest)
    if differences is None:
        found = _nothing_found(packing.size)
    else:
        found = differences.spread(values, entry_kinks, entries.size)
    found["directions"] = directions
    if getattr(differences, "paths", None) is not None:
        details["paths"] = dict(differences.paths)
    return found
