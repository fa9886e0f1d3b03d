"""How a full check grows: with the network's width, with threads, in memory.

Usage::

    python bench/scaling.py [--quick]

- widths: a full check of 784-h-h-10 (batch 32) for h in :data:`WIDTHS`,
  with its time per parameter and its fraction of the flop bound, so the
  growth with ``N`` is visible;
- threads: mnist with ``fg.check(..., threads=1)`` and ``threads=2``,
  measured alternately;
- memory: the peak resident set size (``VmHWM``) of a fresh process that
  checks a workload, before and after the check, against the size of its data
  (the tiny ``course`` workload shows the fixed cost of loading the compiled
  kernels).
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402, I001  (first: sets OMP_WAIT_POLICY before any thread starts)

machine.quiet_openmp()

import numba  # noqa: E402
import numpy as np  # noqa: E402
from flops import matmul_rate, structured_flops  # noqa: E402
from measure import best_time, measure_fastgrad  # noqa: E402
from workloads import EPSILON, WORKLOADS, Workload  # noqa: E402

WIDTHS = (128, 256, 512, 1024, 2048)
QUICK_WIDTHS = (128, 256, 512)
BENCH = os.path.dirname(os.path.abspath(__file__))


def width_workload(h, batch=32):
    """Return the workload 784-h-h-10 with ``batch`` samples."""
    return Workload(f"784-{h}-{h}-10", (784, h, h, 10), batch)


def width_row(h, gflops, rounds=3):
    """Time a full check of 784-h-h-10; return a dict of its figures."""
    w = width_workload(h)
    result, _ = measure_fastgrad(w.build(), rounds=rounds)
    bound = structured_flops(w.sizes, w.batch)
    return {"h": h, "N": w.n_params, "seconds": result.seconds,
            "us_per_param": result.seconds / w.n_params * 1e6,
            "bound_gflop": bound / 1e9, "of_bound": bound / (gflops * 1e9) / result.seconds}


def describe_widths(rows, gflops):
    """Return the width table as text."""
    lines = [f"full check of 784-h-h-10, batch 32 (flop bound at {gflops:.1f} GFLOP/s):",
             f"{'h':>5} {'N':>10} {'seconds':>9} {'us/param':>9} {'bound GFLOP':>12} "
             f"{'of bound':>9}"]
    lines += [f"{r['h']:>5} {r['N']:>10,} {r['seconds']:>9.3f} {r['us_per_param']:>9.3f} "
              f"{r['bound_gflop']:>12.1f} {r['of_bound']:>9.2f}" for r in rows]
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
    import baselines

    problem = WORKLOADS[name].build()
    counts = [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]
    best, control = {}, {}
    for t in counts:
        baselines.fastgrad_check(problem, EPSILON, threads=t)
        _control(t)
    for _ in range(rounds):
        for t in counts:
            seconds, _ = best_time(
                lambda t=t: baselines.fastgrad_check(problem, EPSILON, threads=t), 1)
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
        line += (f"; speedup {best[1] / best[2]:.2f}x (a trivial prange loop: "
                 f"{control[1] / control[2]:.2f}x at the same time)")
    return line


MEMORY_CHILD = r"""
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
import fastgrad as fg
from workloads import EPSILON, WORKLOADS
p = WORKLOADS[sys.argv[2]].build()
before = peak_kb()
t = time.perf_counter()
report = fg.check(p.net, p.params, p.X, p.Y, epsilon=EPSILON)
seconds = time.perf_counter() - t
after = peak_kb()
print(json.dumps({"peak_before_kb": before, "peak_after_kb": after, "seconds": seconds,
                  "verdict": report.verdict.name}))
"""


def peak_memory(name="mnist"):
    """Return the peak RSS (MB) of a fresh process checking ``name``, before and after the check."""
    w = WORKLOADS[name]
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-c", MEMORY_CHILD, BENCH, name], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    params = w.n_params * 8
    batch = w.batch * (w.sizes[0] + w.sizes[-1]) * 8
    activations = 3 * w.batch * sum(w.sizes) * 8
    return {"workload": name, "N": w.n_params,
            "peak_before_mb": out["peak_before_kb"] / 1024,
            "peak_after_mb": out["peak_after_kb"] / 1024,
            "params_mb": params / 2**20, "batch_mb": batch / 2**20,
            "activations_mb": activations / 2**20}


def describe_memory(m):
    """Return a peak-RSS figure as text."""
    data = m["params_mb"] + m["batch_mb"] + m["activations_mb"]
    return (f"{m['workload']} (N={m['N']:,}): peak {m['peak_after_mb']:.0f} MB after the check, "
            f"{m['peak_before_mb']:.0f} MB before it (interpreter, numpy, numba, data); the check "
            f"added {m['peak_after_mb'] - m['peak_before_mb']:.0f} MB. Data: {data:.2f} MB "
            f"(parameters {m['params_mb']:.2f}, batch {m['batch_mb']:.2f}, pre-activations, "
            f"activations and masks {m['activations_mb']:.2f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="widths up to 512, fewer rounds")
    args = parser.parse_args(argv)
    gflops = matmul_rate()
    rows = [width_row(h, gflops, rounds=1 if args.quick or h >= 1024 else 3)
            for h in (QUICK_WIDTHS if args.quick else WIDTHS)]
    gflops_end = max(gflops, matmul_rate())
    for r in rows:
        r["of_bound"] *= gflops / gflops_end
    print(describe_widths(rows, gflops_end))
    print(describe_threads(thread_scaling(rounds=2 if args.quick else 5)))
    for name in ("course", "mnist") if args.quick else ("course", "mnist", "wide"):
        print(describe_memory(peak_memory(name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
