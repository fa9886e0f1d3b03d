"""How a check grows: with width, depth and activation, with threads, in memory.

- widths: a full check of 784-h-h-10 (batch 32) for h in :data:`WIDTHS`,
  with its time per parameter and its fraction of the flop bound;
- depth x width: a full check of ``width`` x ``depth`` hidden layers
  (input ``width``, 10 softmax outputs, batch 32) for ReLU and tanh, as time
  per parameter and as numpy backprops of the same batch;
- threads: mnist with ``fg.check(..., threads=1)`` and ``threads=2``,
  measured alternately;
- memory: the peak resident set size (``VmHWM``) of a fresh process that
  checks a workload, before and after the check, against the size of its data
  (the tiny ``course`` workload shows the fixed cost of loading the compiled
  kernels).
"""

import json
import os
import subprocess
import sys
import time

import numba
import numpy as np

from .flops import structured_flops
from .measure import best_time, measure_fastgrad
from .workloads import EPSILON, WORKLOADS, Workload

WIDTHS = (128, 256, 512, 1024, 2048)
QUICK_WIDTHS = (128, 256, 512)
BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The ``bench`` folder, put on a child's path so that it imports ``support``."""


def width_workload(h, batch=32):
    """Return the workload 784-h-h-10 with ``batch`` samples."""
    return Workload(f"784-{h}-{h}-10", (784, h, h, 10), batch)


def width_row(h, gflops, rounds=3):
    """Time a full check of 784-h-h-10; return a dict of its figures."""
    w = width_workload(h)
    result, _ = measure_fastgrad(w.build(), rounds=rounds)
    bound = structured_flops(w.sizes, w.batch)
    return {
        "h": h,
        "N": w.n_params,
        "seconds": result.seconds,
        "us_per_param": result.seconds / w.n_params * 1e6,
        "bound_gflop": bound / 1e9,
        "of_bound": bound / (gflops * 1e9) / result.seconds,
    }


def describe_widths(rows, gflops):
    """Return the width table as text."""
    lines = [
        f"full check of 784-h-h-10, batch 32 (flop bound at {gflops:.1f} GFLOP/s):",
        f"{'h':>5} {'N':>10} {'seconds':>9} {'us/param':>9} {'bound GFLOP':>12} {'of bound':>9}",
    ]
    lines += [
        f"{r['h']:>5} {r['N']:>10,} {r['seconds']:>9.3f} {r['us_per_param']:>9.3f} "
        f"{r['bound_gflop']:>12.1f} {r['of_bound']:>9.2f}"
        for r in rows
    ]
    return "\n".join(lines)


@numba.njit(parallel=True)
def _spin(n, lanes):
    out = np.zeros(lanes)
    for lane in numba.prange(lanes):
        total = 0.0
        for i in range(n):
            total += np.sqrt(i + lane)
        out[lane] = total
    return out


def _control(threads):
    numba.set_num_threads(threads)
    try:
        started = time.perf_counter()
        _spin(20_000_000, 2)
        return time.perf_counter() - started
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def thread_scaling(name="mnist", rounds=5):
    """Return ``{threads: best seconds}`` of a full check for 1 and 2 threads, and the control.

    The thread counts alternate round by round so that both see the same
    machine. The control is a trivial two-lane ``prange`` loop timed the same
    way: its speedup is what the machine offered at the time (on a shared
    machine, less than 2 when another process holds a core).
    """
    from . import baselines

    problem = WORKLOADS[name].build()
    counts = [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]
    best, control = {}, {}
    for t in counts:
        baselines.fastgrad_check(problem, EPSILON, threads=t)
        _control(t)
    for _ in range(rounds):
        for t in counts:
            seconds, _ = best_time(
                lambda t=t: baselines.fastgrad_check(problem, EPSILON, threads=t), 1
            )
            best[t] = min(best.get(t, seconds), seconds)
            spin = _control(t)
            control[t] = min(control.get(t, spin), spin)
    return best, control


def describe_threads(scaling, name="mnist"):
    """Return the thread scaling (``(best, control)`` of :func:`thread_scaling`) as text."""
    best, control = scaling
    parts = [f"{t} thread{'s' if t > 1 else ''}: {s:.3f} s" for t, s in sorted(best.items())]
    line = f"threads ({name}, full check, best of rounds): " + "; ".join(parts)
    if 1 in best and 2 in best:
        line += (
            f"; speedup {best[1] / best[2]:.2f}x (a trivial prange loop: "
            f"{control[1] / control[2]:.2f}x at the same time)"
        )
    return line


CHECK_CHILD = r"""
import json, resource, sys, time


def peak_kb():
    # VmHWM is this process's own high-water mark; ru_maxrss can carry the
    # parent's peak over fork and exec on Linux
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


sys.path.insert(0, sys.argv[1])
from support import machine
machine.quiet_openmp()
from support.backprop import backprop_seconds
from support.baselines import fastgrad_check
from support.workloads import EPSILON, WORKLOADS
import dataclasses
name, mode, batch = sys.argv[2], sys.argv[3], int(sys.argv[4])
w = WORKLOADS[name]
p = dataclasses.replace(w, batch=batch).build() if batch else w.build()
start = peak_kb()
hidden = WORKLOADS[name].hidden
fastgrad_check(WORKLOADS["small" if hidden == "relu" else "small-" + hidden].build(), EPSILON)
warm = peak_kb()
t = time.perf_counter()
report = fastgrad_check(p, EPSILON, mode)
seconds = time.perf_counter() - t
after = peak_kb()
print(json.dumps({"peak_start_kb": start, "peak_warm_kb": warm, "peak_after_kb": after,
                  "seconds": seconds, "backprop_seconds": backprop_seconds(w.build()),
                  "verdict": report.verdict.name}))
"""


def fresh_check(name="mnist", mode="full", batch=None):
    """Check workload ``name`` once in a fresh process; return its time and peak RSS.

    The child builds the problem, loads the kernels with a check of a small
    network of the same activation, then times one ``fg.check`` of the
    workload in ``mode`` and one numpy backprop of its batch. Peak resident
    memory (``VmHWM``, MB) is read after building the data
    (``peak_start_mb``), after loading the kernels (``peak_warm_mb``) and after
    the check (``peak_after_mb``).

    With ``batch``, the check runs on a batch of that size (built with the
    workload's seeds) and ``seconds`` is its time scaled to the workload's
    batch (``measured_seconds`` is the time itself): a check costs about the
    same for every sample, so this estimates a check too long to run. The backprop
    is still timed on the workload's own batch.
    """
    w = WORKLOADS[name]
    done = subprocess.run(
        [sys.executable, "-c", CHECK_CHILD, BENCH, name, mode, str(batch or 0)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"check child failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    scale = w.batch / batch if batch else 1.0
    params = w.n_params * 8
    samples = w.batch * (w.sizes[0] + w.sizes[-1]) * 8
    activations = 3 * w.batch * sum(w.sizes) * 8
    return {
        "workload": name,
        "mode": mode,
        "N": w.n_params,
        "seconds": out["seconds"] * scale,
        "measured_seconds": out["seconds"],
        "batch": batch or w.batch,
        "backprop_seconds": out["backprop_seconds"],
        "verdict": out["verdict"],
        "peak_start_mb": out["peak_start_kb"] / 1024,
        "peak_warm_mb": out["peak_warm_kb"] / 1024,
        "peak_after_mb": out["peak_after_kb"] / 1024,
        "params_mb": params / 2**20,
        "batch_mb": samples / 2**20,
        "activations_mb": activations / 2**20,
    }


RESULT_BYTES = 8 + 8 + 8 + 1 + 4
"""Bytes per parameter a check must hold whatever it does: the analytic gradient (float64)
and the report's per-entry arrays, the numerical gradient and the entry errors (float64),
whether each entry was computed (bool) and its kink count (int32)."""


def beyond_results(m):
    """Return the bytes per parameter a check added beyond :data:`RESULT_BYTES`."""
    return (m["peak_after_mb"] - m["peak_warm_mb"]) * 2**20 / m["N"] - RESULT_BYTES


def describe_memory(m):
    """Return the peak RSS of a :func:`fresh_check` as text."""
    data = m["params_mb"] + m["batch_mb"] + m["activations_mb"]
    added = m["peak_after_mb"] - m["peak_warm_mb"]
    return (
        f"{m['workload']} {m['mode']} (N={m['N']:,}): peak {m['peak_after_mb']:.0f} MB; "
        f"{m['peak_start_mb']:.0f} MB with the data built, "
        f"{m['peak_warm_mb']:.0f} MB with the kernels loaded; the check added "
        f"{added:.0f} MB ({added * 2**20 / m['N']:.0f} bytes per parameter, "
        f"{beyond_results(m):.0f} beyond the gradient and the report's per-entry arrays). "
        f"Data: {data:.2f} MB (parameters {m['params_mb']:.2f}, batch {m['batch_mb']:.2f}, "
        f"pre-activations, activations and masks {m['activations_mb']:.2f})"
    )


def describe_fresh(m):
    """Return a :func:`fresh_check`'s time, in seconds and in numpy backprops, and its memory."""
    scaled = m["seconds"] != m["measured_seconds"]
    return (
        f"{m['workload']:<14} {m['mode']:<12} N={m['N']:>11,}  {m['seconds']:9.3f} s  "
        f"{m['seconds'] / m['backprop_seconds']:9.1f} backprops "
        f"(backprop {m['backprop_seconds'] * 1e3:.1f} ms)  "
        f"peak RSS {m['peak_after_mb']:.0f} MB (+{m['peak_after_mb'] - m['peak_warm_mb']:.0f} "
        f"MB in the check, {beyond_results(m):.0f} B/param beyond the results)  {m['verdict']}"
        + (f"  [scaled from {m['measured_seconds']:.3f} s at batch {m['batch']}]" if scaled else "")
    )


# ------------------------------------------------------------------ depth x width

SWEEP_DEPTHS = (1, 2, 4)
"""Hidden layers of the depth x width sweep."""
SWEEP_WIDTHS = (64, 128, 256, 512)
QUICK_SWEEP_WIDTHS = (64, 128, 256)
SWEEP_HIDDEN = ("relu", "tanh")


def sweep_workload(depth, width, hidden, batch=32):
    """Return ``depth`` hidden layers of ``width`` units, input ``width``, 10 softmax outputs."""
    return Workload(
        f"{hidden} {width}x{depth}", (width,) * (depth + 1) + (10,), batch, hidden=hidden, peers=()
    )


def sweep_row(depth, width, hidden, rounds=3):
    """Time a full check of :func:`sweep_workload`; return a dict of its figures."""
    w = sweep_workload(depth, width, hidden)
    result, _ = measure_fastgrad(w.build(), rounds=rounds)
    return {
        "hidden": hidden,
        "depth": depth,
        "width": width,
        "N": w.n_params,
        "seconds": result.seconds,
        "ns_per_param": result.seconds / w.n_params * 1e9,
        "backprops": result.backprops,
    }


def describe_sweep(rows):
    """Return the depth x width sweep as text, one line per network."""
    lines = [
        "full check, `depth` hidden layers of `width` units (input `width`, 10 softmax "
        "outputs), batch 32:",
        f"{'hidden':<7} {'depth':>5} {'width':>6} {'N':>10} {'seconds':>9} "
        f"{'ns/param':>9} {'backprops':>10}",
    ]
    lines += [
        f"{r['hidden']:<7} {r['depth']:>5} {r['width']:>6} {r['N']:>10,} "
        f"{r['seconds']:>9.4f} {r['ns_per_param']:>9.1f} {r['backprops']:>10.1f}"
        for r in rows
    ]
    return "\n".join(lines)
