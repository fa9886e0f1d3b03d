"""fastgrad's ``net.gradients``, ``net.loss`` and ``net.predict`` against one numpy backprop.

Usage::

    python bench/passes.py [--workloads mnist,wide2048] [--seconds 2]

For each workload, the calls of fastgrad and a plain numpy forward and
backward pass of the same network and batch alternate in one process; the
best time of each is printed with its ratio to numpy's (see
``support/passes.py``).
"""

import argparse
import sys

from support import machine  # noqa: I001  (first: sets OMP_WAIT_POLICY before any thread starts)

machine.quiet_openmp()

from support import passes  # noqa: E402
from support.workloads import WORKLOADS  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default=",".join(passes.WORKLOADS))
    parser.add_argument(
        "--seconds", type=float, default=passes.SECONDS, help="timing per BLAS thread setting"
    )
    args = parser.parse_args(argv)
    names = [name for name in args.workloads.split(",") if name]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload: {', '.join(unknown)}")
    print("\n".join(f"{key}: {value}" for key, value in machine.info().items()))
    for name in names:
        problem = WORKLOADS[name].build()
        times = passes.pass_times(problem, seconds=args.seconds)
        print(passes.describe(name, problem, times), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
