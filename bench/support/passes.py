"""fastgrad's own passes (``net.gradients``, ``net.loss``, ``net.predict``) against numpy's.

Each call is timed against :func:`backprop.numpy_backprop`, the plain numpy
forward and backward pass of the same network and batch, in the same process,
the calls of both tools alternating round by round so that both see the same
machine. On a shared machine a call is only ever slowed down, so the best
round of each counts, and the rounds run under each BLAS thread setting of
:func:`baselines.thread_settings` (numpy's BLAS at its default threads and at
one): fastgrad's passes read the same BLAS, so both get the faster setting.

``ratio`` is fastgrad's best time over numpy's best time: 1.2 means fastgrad's
call costs 20 % more than one numpy backprop (``loss`` and ``predict`` run
the forward pass only, so theirs are well below 1 when fastgrad keeps up).
"""

import math
import time

from .backprop import assert_matches_fastgrad, numpy_backprop
from .baselines import thread_settings

CALLS = ("gradients", "loss", "predict")
"""The network's methods timed, in the order of the table."""
WORKLOADS = ("mnist", "wide2048")
"""The workloads of the script's default run: a small network and a 2048-wide one."""
MIN_ROUNDS = 5
SECONDS = 2.0
"""Rounds continue (at least :data:`MIN_ROUNDS`, at most :data:`MAX_ROUNDS`) until this many
seconds have passed per thread setting."""
MAX_ROUNDS = 500


def fastgrad_call(problem, call):
    """Return a function of no arguments that runs ``net.<call>`` on the problem's batch."""
    net, params, X, Y = problem.net, problem.params, problem.X, problem.Y
    if call == "gradients":
        return lambda: net.gradients(params, X, Y)
    if call == "loss":
        return lambda: net.loss(params, X, Y)
    if call == "predict":
        return lambda: net.predict(params, X)
    raise ValueError(f"call must be one of {', '.join(CALLS)}; got {call!r}")


def pass_times(problem, calls=CALLS, seconds=SECONDS, min_rounds=MIN_ROUNDS):
    """Return ``{"numpy": best s, call: best s, ...}`` of alternating rounds of every call.

    The numpy backprop is first asserted to agree with ``net.gradients``
    (to 1e-10), and every call runs once untimed. A round times one numpy
    backprop, then each fastgrad call once.
    """
    assert_matches_fastgrad(problem)
    runners = {"numpy": lambda: numpy_backprop(problem)}
    runners.update({call: fastgrad_call(problem, call) for call in calls})
    best = dict.fromkeys(runners, math.inf)
    for setting in thread_settings("numpy").values():
        with setting():
            for run in runners.values():
                run()
            started, done = time.perf_counter(), 0
            while done < min_rounds or (
                time.perf_counter() - started < seconds and done < MAX_ROUNDS
            ):
                done += 1
                for name, run in runners.items():
                    call = time.perf_counter()
                    run()
                    best[name] = min(best[name], time.perf_counter() - call)
    return best


def describe(name, problem, times):
    """Return the rows of one workload: each call's time and its ratio to numpy's backprop."""
    numpy_s = times["numpy"]
    lines = [
        f"{name} {list(problem.workload.sizes)}, batch {problem.workload.batch}: "
        f"numpy backprop {numpy_s * 1e3:.3f} ms"
    ]
    for call, seconds in times.items():
        if call != "numpy":
            ratio = seconds / numpy_s
            lines.append(f"  net.{call:<10} {seconds * 1e3:9.3f} ms  {ratio:6.2f} x numpy backprop")
    return "\n".join(lines)
