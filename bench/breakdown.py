"""Where a check's time goes: the functions that take the most time in one warm ``fg.check``.

Usage::

    python bench/breakdown.py [mnist wide ...] [--top 8]

Runs ``fg.check`` once to load the kernels, then once more under cProfile,
and prints the functions with the most time of their own (a compiled kernel
shows as one call of its Python dispatcher). Only the public API is used, so
the breakdown follows fastgrad's internals wherever they move.
"""

import argparse
import cProfile
import io
import os
import pstats
import sys

from support import machine  # noqa: I001  (first: sets OMP_WAIT_POLICY before any thread starts)

machine.quiet_openmp()

from support import baselines  # noqa: E402
from support.workloads import EPSILON, WORKLOADS  # noqa: E402


def breakdown(name, top=8):
    """Return ``(total seconds, [(seconds, calls, function), ...])`` of one warm check."""
    problem = WORKLOADS[name].build()
    baselines.fastgrad_check(problem, EPSILON)
    profile = cProfile.Profile()
    profile.enable()
    baselines.fastgrad_check(problem, EPSILON)
    profile.disable()
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    for (filename, line, function), (_, calls, own, _, _) in stats.stats.items():
        where = os.path.basename(filename) if filename != "~" else ""
        label = f"{where}:{line}({function})" if where else function
        rows.append((own, calls, label))
    rows.sort(reverse=True)
    return stats.total_tt, rows[:top]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workloads", nargs="*", default=["mnist", "wide"])
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args(argv)
    for name in args.workloads:
        total, rows = breakdown(name, args.top)
        print(f"{name}: {total:.3f} s in fg.check")
        for own, calls, label in rows:
            print(f"  {own:8.4f} s {100 * own / total:5.1f} %  {calls:>5} calls  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
