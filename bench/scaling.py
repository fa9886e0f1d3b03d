"""How a full check grows: with width, with depth x width for ReLU and tanh, threads, memory.

Usage::

    python bench/scaling.py [--quick] [--only widths,sweep,threads,memory]

See ``support/scaling.py`` for what each figure measures.
"""

import argparse
import sys

from support import machine  # noqa: I001  (first: sets OMP_WAIT_POLICY before any thread starts)

machine.quiet_openmp()

from support import scaling  # noqa: E402
from support.flops import matmul_rate  # noqa: E402

SECTIONS = ("widths", "sweep", "threads", "memory")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller networks, fewer rounds")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections among {', '.join(SECTIONS)}",
    )
    args = parser.parse_args(argv)
    only = [s for s in args.only.split(",") if s]
    if set(only) - set(SECTIONS):
        parser.error(f"unknown section: {', '.join(sorted(set(only) - set(SECTIONS)))}")
    if "widths" in only:
        gflops = matmul_rate()
        rows = [
            scaling.width_row(h, gflops, rounds=1 if args.quick or h >= 1024 else 3)
            for h in (scaling.QUICK_WIDTHS if args.quick else scaling.WIDTHS)
        ]
        gflops_end = max(gflops, matmul_rate())
        for r in rows:
            r["of_bound"] *= gflops / gflops_end
        print(scaling.describe_widths(rows, gflops_end), flush=True)
    if "sweep" in only:
        widths = scaling.QUICK_SWEEP_WIDTHS if args.quick else scaling.SWEEP_WIDTHS
        sweep = [
            scaling.sweep_row(depth, width, hidden, rounds=1 if args.quick else 3)
            for hidden in scaling.SWEEP_HIDDEN
            for depth in scaling.SWEEP_DEPTHS
            for width in widths
        ]
        print(scaling.describe_sweep(sweep), flush=True)
    if "threads" in only:
        print(
            scaling.describe_threads(scaling.thread_scaling(rounds=2 if args.quick else 5)),
            flush=True,
        )
    if "memory" in only:
        for name in ("course", "mnist") if args.quick else ("course", "mnist", "wide"):
            print(scaling.describe_memory(scaling.fresh_check(name)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
