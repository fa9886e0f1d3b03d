"""Cold start: what a fresh process pays before and during its first check.

Each figure comes from a fresh ``python -c`` subprocess:

- ``import fastgrad``: seconds to import it (numpy and numba are imported
  first and timed apart), and how many compiled signatures exist right after
  the import (must be 0: importing compiles nothing);
- first-ever compile: the first ``fg.check`` of the workload with
  ``NUMBA_CACHE_DIR`` pointing at a new, empty directory, so every kernel the
  check needs is compiled (and written to that cache);
- warm cache: the same in two more processes with the same cache directory,
  which now only load machine code from disk (the best of the two is kept).

Each check process also times a second ``fg.check`` of the same workload,
the warm run time, so ``first - second`` is the compile or cache-load cost.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The ``bench`` folder, put on a child's path so that it imports ``support``."""

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy, numba
t1 = time.perf_counter()
import fastgrad as fg
t2 = time.perf_counter()
from numba.core.registry import CPUDispatcher
compiled = sum(len(value.signatures) for name, module in list(sys.modules.items())
               if name.startswith("fastgrad") for value in vars(module).values()
               if isinstance(value, CPUDispatcher))
out = {"import_numpy_numba": t1 - t0, "import_fastgrad": t2 - t1, "compiled_at_import": compiled}
workload = sys.argv[2] if len(sys.argv) > 2 else ""
if workload:
    sys.path.insert(0, sys.argv[1])
    from support.workloads import EPSILON, WORKLOADS
    p = WORKLOADS[workload].build()
    for key in ("first_check", "second_check"):
        t = time.perf_counter()
        report = fg.check(p.net, p.params, p.X, p.Y, epsilon=EPSILON)
        out[key] = time.perf_counter() - t
    out["verdict"] = report.verdict.name
print(json.dumps(out))
"""


def run_python(code, argv, env, what, cwd=None):
    """Run ``code`` with ``argv`` in a fresh interpreter, under ``env`` and in ``cwd``.

    Return the JSON object its last line of stdout prints, with its wall time
    as ``"process_wall"``, and its stderr; raise ``RuntimeError`` naming
    ``what`` (with the end of its stderr) if it fails.
    """
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_wall"] = wall
    return out, done.stderr


def run_child(workload="", cache_dir=None):
    """Run :data:`CHILD` in a fresh interpreter; return its figures and its wall time."""
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    return run_python(CHILD, [BENCH, workload], env, "cold-start child")[0]


def import_time(repeats=3):
    """Return the best of ``repeats`` fresh-process imports (figures of the best)."""
    runs = [run_child() for _ in range(repeats)]
    return min(runs, key=lambda r: r["import_fastgrad"])


def compile_and_cache(workload="mnist", warm_runs=2):
    """Return ``(first-ever compile run, best warm-cache run)`` of ``workload``'s first check."""
    with tempfile.TemporaryDirectory(prefix="fastgrad-numba-cache-") as cache:
        cold = run_child(workload, cache)
        warm = min(
            (run_child(workload, cache) for _ in range(warm_runs)), key=lambda r: r["first_check"]
        )
    return cold, warm


def describe(imported, cold, warm, workload="mnist"):
    """Return the cold-start figures as text lines."""
    return "\n".join(
        [
            f"import numpy + numba:         {imported['import_numpy_numba']:.3f} s",
            f"import fastgrad (after them): {imported['import_fastgrad']:.3f} s, "
            f"{imported['compiled_at_import']} signatures compiled at import",
            f"python -c 'import fastgrad':  {imported['process_wall']:.3f} s wall, "
            "interpreter included",
            f"first-ever check ({workload}, empty NUMBA_CACHE_DIR): {cold['first_check']:.2f} s "
            f"(warm run {cold['second_check']:.3f} s, so about "
            f"{cold['first_check'] - cold['second_check']:.1f} s compiling)",
            f"first check with a warm disk cache: {warm['first_check']:.3f} s "
            f"(warm run {warm['second_check']:.3f} s, so about "
            f"{warm['first_check'] - warm['second_check']:.3f} s loading cached code)",
        ]
    )
