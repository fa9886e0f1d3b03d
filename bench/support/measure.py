"""Timing of every tool on a workload, shared by ``table.py`` and the pytest suites.

On a shared machine a run is slowed by whatever else runs, never sped up, so
every figure here is the best of a few rounds, for fastgrad and the baselines
alike. A baseline that differences a subset of ``n`` of the ``N`` parameters
is timed in blocks (see :meth:`workloads.Problem.blocks`); its best time per
parameter is scaled to ``N``.
"""

import math
import time
from dataclasses import dataclass

import numpy as np

from . import baselines
from .backprop import backprop_seconds
from .flops import sampled_per_layer, structured_flops
from .workloads import EPSILON

TOOLS = ("fastgrad", "numpy", "torch", "jax")
ROUNDS = 3
"""Rounds per measurement, fewer when a round is long (see :data:`BUDGET`)."""
FASTGRAD_ROUNDS = 10
"""Rounds of a fastgrad check (within :data:`BUDGET`): as many chances as a baseline's runs."""


def fastgrad_rounds(workload):
    """Return the timed rounds of a fastgrad check in the pytest suites.

    :data:`FASTGRAD_ROUNDS` for ReLU networks up to a million parameters
    (checks of milliseconds), :data:`ROUNDS` for larger ones and for smooth
    activations past ten thousand parameters (checks of a second or more),
    one for a ``large`` workload (a minute or more).
    """
    if workload.large:
        return 1
    if workload.n_params > 1_000_000 or (workload.hidden != "relu" and workload.n_params > 10_000):
        return ROUNDS
    return FASTGRAD_ROUNDS


BUDGET = 3.0
"""No new round starts once a measurement has taken this many seconds."""
BASELINE_BUDGET = 30.0
"""``table.py`` starts no new block of a baseline after this many seconds (each
thread setting runs at least once), so that a loaded machine cannot stretch a
run without bound."""


@dataclass
class Result:
    """One tool on one workload."""

    workload: str
    mode: str
    tool: str
    n_params: int
    n_done: int
    measured: float
    first: float = None
    agreement: float = None
    flops: float = None
    setting: str = ""
    backprop: float = None
    """Seconds of one numpy forward and backward pass of the same batch, in the same process."""

    @property
    def scaled(self):
        """Whether the time was measured on a subset and scaled to ``N``."""
        return self.n_done < self.n_params

    @property
    def seconds(self):
        """Seconds for the whole check (scaled when measured on a subset)."""
        return self.measured * self.n_params / self.n_done

    @property
    def backprops(self):
        """Seconds as a multiple of one numpy backprop of the same batch (``None`` if not timed)."""
        return self.seconds / self.backprop if self.backprop else None

    @property
    def note(self):
        """``"scaled from n of N"`` for a subset, and the thread setting that was fastest."""
        parts = [f"scaled from {self.n_done:,} of {self.n_params:,}"] if self.scaled else []
        if self.setting:
            parts.append(self.setting)
        return "; ".join(parts)


def best_time(fn, rounds=ROUNDS, budget=BUDGET):
    """Return ``(best seconds, last result)`` of up to ``rounds`` calls of ``fn``."""
    best, result, started = math.inf, None, time.perf_counter()
    for _ in range(max(1, rounds)):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
        if time.perf_counter() - started > budget:
            break
    return best, result


def fastgrad_flops(workload, mode, report=None):
    """Return the structured flop count of a fastgrad check (``None`` for directional)."""
    if mode == "full":
        return structured_flops(workload.sizes, workload.batch)
    if mode == "sample":
        k = report.details.get("samples_per_tensor") if report is not None else None
        entries = sampled_per_layer(workload.sizes, k or 32)
        return structured_flops(workload.sizes, workload.batch, entries)
    return None


def measure_fastgrad(
    problem, mode="full", rounds=FASTGRAD_ROUNDS, threads=None, backprop=None, first_call=True
):
    """Time ``fg.check``: the first call apart, then the best of ``rounds``.

    ``backprop`` is the time of one numpy backprop of the batch (measured here
    when not given). With ``first_call=False`` (for checks too long to run
    twice) no call is made before the timed rounds: warm the kernels up on a
    small network first (:func:`warm_up`). Returns the :class:`Result` and the
    report of the last call.
    """
    w = problem.workload
    first = None
    if first_call:
        t = time.perf_counter()
        baselines.fastgrad_check(problem, EPSILON, mode, threads)
        first = time.perf_counter() - t
    best, report = best_time(
        lambda: baselines.fastgrad_check(problem, EPSILON, mode, threads), rounds
    )
    result = Result(
        w.name,
        mode,
        "fastgrad",
        w.n_params,
        w.n_params,
        best,
        first=first,
        flops=fastgrad_flops(w, mode, report),
        backprop=backprop_seconds(problem) if backprop is None else backprop,
    )
    return result, report


class Baseline:
    """A warmed-up baseline on a problem: ``prepare(indices, setting)`` returns a timed run.

    The warm-up (a call on two entries under each thread setting; for JAX,
    compiling its one chunk shape, whose seconds are kept in
    ``compile_seconds``) is done here so that runs measure run time only.
    ``settings`` are the thread settings tried (see
    :func:`baselines.thread_settings`); the fastest counts.
    """

    def __init__(self, tool, problem):
        self.tool = tool
        self.problem = problem
        self.compile_seconds = None
        self.settings = baselines.thread_settings(tool)
        if tool == "numpy":
            self._run = lambda indices: baselines.numpy_loop(problem, indices, EPSILON)
        elif tool == "torch":
            self._run = lambda indices: baselines.TorchJacobian(problem, indices, EPSILON).run()
        elif tool == "jax":
            runner = baselines.JaxLoop(problem, EPSILON)
            self.compile_seconds = runner.compile()
            self._run = runner.run
        else:
            raise ValueError(f"unknown baseline {tool!r}")
        for label in self.settings:
            self.prepare(np.arange(2), label)()

    def prepare(self, indices, label):
        """Return a no-argument callable differencing ``indices`` under setting ``label``.

        What can be built ahead (torch's function) is built here, untimed.
        """
        setting = self.settings[label]
        if self.tool == "torch":
            run = baselines.TorchJacobian(self.problem, indices, EPSILON).run
        else:

            def run():
                return self._run(indices)

        def timed():
            with setting():
                return run()

        return timed

    def schedule(self, blocks, rounds=ROUNDS):
        """Return the ``(block, setting label)`` runs to time.

        Every block under every setting; a single block (every parameter) in
        ``rounds`` rounds.
        """
        repeats = rounds if len(blocks) == 1 else 1
        return [
            (block, label) for block in blocks for _ in range(repeats) for label in self.settings
        ]


class Tally:
    """Times of a baseline's runs: the best time per parameter and the values of each block."""

    def __init__(self):
        self.per_param = math.inf
        self.best_setting = None
        self._values = {}

    def add(self, block, label, seconds, values):
        """Record one run of ``block`` under setting ``label``."""
        if seconds / len(block) < self.per_param:
            self.per_param, self.best_setting = seconds / len(block), label
        self._values.setdefault(id(block), (block, values))

    def indices(self):
        """Return the flat indices of every block, concatenated."""
        return np.concatenate([block for block, _ in self._values.values()])

    def values(self):
        """Return the baseline's gradient at :meth:`indices`."""
        return np.concatenate([values for _, values in self._values.values()])


def time_blocks(baseline, blocks, rounds=ROUNDS, budget=BASELINE_BUDGET):
    """Run a baseline's :meth:`Baseline.schedule` and return the :class:`Tally`.

    Stops early, once every setting has run, when ``budget`` seconds have passed.
    """
    tally = Tally()
    started, tried = time.perf_counter(), set()
    for block, label in baseline.schedule(blocks, rounds):
        if time.perf_counter() - started > budget and tried == set(baseline.settings):
            break
        tried.add(label)
        run = baseline.prepare(block, label)
        started = time.perf_counter()
        values = run()
        tally.add(block, label, time.perf_counter() - started, values)
    return tally


def baseline_result(baseline, tally, reference, backprop=None):
    """Return the :class:`Result` of a baseline's tally, with its agreement with fastgrad."""
    problem = baseline.problem
    w = problem.workload
    indices = tally.indices()
    agreement = baselines.disagreement(
        baselines.fastgrad_values(reference, problem, indices),
        tally.values(),
        problem.loss(),
        EPSILON,
    )
    setting = tally.best_setting if len(baseline.settings) > 1 else ""
    return Result(
        w.name,
        "full",
        baseline.tool,
        w.n_params,
        indices.size,
        tally.per_param * indices.size,
        first=baseline.compile_seconds,
        agreement=agreement,
        setting=setting,
        backprop=backprop,
    )


def measure_baseline(tool, problem, reference, quick=False, rounds=ROUNDS, backprop=None):
    """Time a baseline on its blocks of the problem and compare it with fastgrad's gradient.

    Parameters
    ----------
    tool : {"numpy", "torch", "jax"}
    problem : Problem
    reference : CheckReport
        fastgrad's full check of the same problem.
    quick : bool
        Use the workload's smaller ``quick`` subsets.
    """
    baseline = Baseline(tool, problem)
    tally = time_blocks(
        baseline,
        problem.blocks(tool, quick),
        rounds,
        budget=BASELINE_BUDGET / 3 if quick else BASELINE_BUDGET,
    )
    return baseline_result(baseline, tally, reference, backprop)


def warm_up(hidden):
    """Load fastgrad's kernels for a ``hidden`` activation by checking a small network of it."""
    from .workloads import WORKLOADS

    name = "small" if hidden == "relu" else f"small-{hidden}"
    baselines.fastgrad_check(WORKLOADS[name].build(), EPSILON)


def measure_workload(workload, tools=TOOLS, quick=False, log=None, modes=None):
    """Return a :class:`Result` per mode of fastgrad and per available baseline.

    fastgrad is timed before the baselines and again after them, and the
    better of the two counts: a baseline's blocks are spread over seconds to
    minutes, so fastgrad gets its chances at both ends of that time too.
    Baselines run only where the workload lists them as ``peers``. A
    ``large`` workload's checks run once each, after a warm-up on a small
    network. Every result carries the time of one numpy backprop of the same
    batch, the best of its measurements before and after the checks.
    """
    problem = workload.build()
    rounds = ROUNDS if quick else FASTGRAD_ROUNDS
    backprop = backprop_seconds(problem)
    if workload.large:
        warm_up(workload.hidden)
    ours, theirs, full = [], [], None
    for mode in modes or workload.modes:
        if workload.large:
            result, report = measure_fastgrad(
                problem, mode, rounds=1, backprop=backprop, first_call=False
            )
        else:
            result, report = measure_fastgrad(problem, mode, rounds=rounds, backprop=backprop)
        if mode == "full":
            full = report
        if log:
            log(f"{workload.name} fastgrad {mode}: {result.seconds:.3g} s")
        ours.append(result)
    for tool in tools:
        if tool not in workload.peers or not baselines.available(tool) or full is None:
            continue
        result = measure_baseline(
            tool, problem, full, quick, rounds=2 if quick else ROUNDS, backprop=backprop
        )
        if log:
            log(f"{workload.name} {tool}: {result.seconds:.3g} s {result.note}")
        theirs.append(result)
    if theirs:
        for result in ours:
            best, _ = best_time(
                lambda m=result.mode: baselines.fastgrad_check(problem, EPSILON, m), rounds
            )
            result.measured = min(result.measured, best)
            if log:
                log(f"{workload.name} fastgrad {result.mode} again: {best:.3g} s")
    backprop = min(backprop, backprop_seconds(problem))
    for result in ours + theirs:
        result.backprop = backprop
    if log:
        log(f"{workload.name} numpy backprop: {backprop * 1e3:.3g} ms")
    return ours + theirs
