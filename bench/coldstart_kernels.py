"""Where the first-ever compile goes: seconds per compiled function, with an empty cache.

Usage::

    python bench/coldstart_kernels.py [--sizes 784,128,64,10] [--top 25] [--json FILE]

Runs ``fastgrad check`` (the command, in this checkout) in a fresh process
whose ``NUMBA_CACHE_DIR`` is a new, empty directory, and records every
compilation numba announces (``numba:compile`` events, which fire only on a
cache miss). Compilations nest: a kernel compiles the functions it calls
first. For each function the table gives

- ``self``: seconds spent compiling it, not counting the functions it
  compiled inside (typing, lowering and LLVM optimization of its own body);
- ``total``: seconds including those nested compilations;
- ``signatures``: how many type signatures of it were compiled.

Seconds are CPU seconds of the process (``time.process_time``): numba
compiles on one thread, so on an idle machine they are wall seconds too, and
on a loaded one they still measure the work. The process's wall and CPU time
are printed too, and a second process on the same, now full, cache gives the
warm figures.
"""

import argparse
import json
import os
import sys
import tempfile

from support.coldstart import run_python

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, sys, time
started, cpu_started = time.perf_counter(), time.process_time()
from numba.core import event

records, stack = [], []

class Recorder(event.Listener):
    def on_start(self, ev):
        stack.append((time.process_time(), ev.data["dispatcher"], 0.0))

    def on_end(self, ev):
        t0, dispatcher, nested = stack.pop()
        total = time.process_time() - t0
        name = f"{dispatcher.py_func.__module__}.{dispatcher.py_func.__qualname__}"
        records.append({"name": name, "total": total, "self": total - nested,
                        "depth": len(stack), "args": str(ev.data["args"])})
        if stack:
            s0, d, n = stack[-1]
            stack[-1] = (s0, d, n + total)

event.register("numba:compile", Recorder())
import resource
from fastgrad import _precompile, cli
waits = []
finish = _precompile.Child.finish

def timed_finish(self, *args, **kwargs):
    cpu = time.process_time() - cpu_started
    merged = finish(self, *args, **kwargs)
    waits.append({"waited": self.waited, "merged": merged, "cpu_before": cpu})
    return merged

_precompile.Child.finish = timed_finish
code = cli.main(sys.argv[1:])
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"records": records, "wall": time.perf_counter() - started,
                  "cpu": time.process_time() - cpu_started, "code": code,
                  "children_cpu": children.ru_utime + children.ru_stime, "waits": waits}))
"""


def run_child(argv, cache_dir):
    """Run :data:`CHILD` (the command with ``argv``) in a fresh interpreter."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=ROOT)
    out, stderr = run_python(CHILD, argv, env, "child", cwd=ROOT)
    out["stderr"] = stderr
    return out


def by_function(records):
    """Sum the records per function: ``{name: {"self", "total", "signatures"}}``."""
    table = {}
    for r in records:
        row = table.setdefault(r["name"], {"self": 0.0, "total": 0.0, "signatures": 0})
        row["self"] += r["self"]
        row["total"] += r["total"]
        row["signatures"] += 1
    return table


def describe(cold, warm, top):
    """Return the figures as text lines."""
    table = by_function(cold["records"])
    compiling = sum(r["total"] for r in cold["records"] if r["depth"] == 0)
    lines = [
        f"first-ever fastgrad check (empty cache): {cold['process_wall']:.1f} s wall, "
        f"{cold['cpu']:.1f} s CPU, {compiling:.1f} s CPU of it compiling {len(table)} "
        f"functions ({len(cold['records'])} signatures)",
        f"compiling ahead in a child process: {cold['children_cpu']:.1f} s CPU; "
        + (
            ", ".join(
                f"waited {w['waited']:.2f} s for it ({'merged' if w['merged'] else 'not merged'}) "
                f"after {w['cpu_before']:.1f} s CPU here"
                for w in cold["waits"]
            )
            or "none started"
        ),
        f"warm cache: {warm['process_wall']:.2f} s wall, {warm['cpu']:.2f} s CPU, "
        f"{len(warm['records'])} signatures compiled",
        "",
        f"{'function (CPU seconds)':58s} {'self':>7s} {'total':>8s} {'sigs':>5s}",
    ]
    rows = sorted(table.items(), key=lambda item: -item[1]["self"])
    for name, row in rows[:top]:
        name = name.removeprefix("fastgrad.kernels.")
        lines.append(f"{name:58s} {row['self']:7.2f} {row['total']:8.2f} {row['signatures']:5d}")
    rest = rows[top:]
    if rest:
        lines.append(f"{f'... {len(rest)} more':58s} {sum(r['self'] for _, r in rest):7.2f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="784,128,64,10")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--json", help="also write the raw records to this file")
    args = parser.parse_args(argv)
    command = ["check", "--sizes", args.sizes, "--quiet"]
    with tempfile.TemporaryDirectory(prefix="fastgrad-numba-cache-") as cache:
        cold = run_child(command, cache)
        warm = run_child(command, cache)
    print(describe(cold, warm, args.top))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"cold": cold, "warm": warm}, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
