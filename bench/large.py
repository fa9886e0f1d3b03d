"""The 2048-wide networks: full, sampled and directional checks, in seconds, backprops and memory.

Usage::

    python bench/large.py [--workloads wide2048,wide2048-tanh] [--modes sample,directional,full]
    python bench/large.py --workloads wide4096x6      # opt-in: 100.7M parameters, ~6 GB

The 100.7M-parameter ``wide4096x6`` runs only when named, in its own modes
(sample and directional): it needs about 6 GB and minutes per mode.

Each check runs in a fresh process (``support.scaling.fresh_check``): the
kernels are loaded with a check of a small network of the same activation,
then the workload is checked once, and one numpy forward and backward pass of
the same batch is timed in the same process, so that every time is also given
in backprops. The peak resident memory of that process is reported with it.
The tanh full check takes 15-30 s on 2 cores (about 2 minutes before its
series were kept to order 3); ``--batch 4`` estimates it from a check of 4
samples, scaled to the workload's 32 (a check costs the same for every
sample).
"""

import argparse
import sys
import time

from support import machine  # noqa: I001  (first: sets OMP_WAIT_POLICY before any thread starts)

machine.quiet_openmp()

from support.scaling import describe_fresh, fresh_check  # noqa: E402
from support.workloads import ALL_MODES, WORKLOADS, workloads_and  # noqa: E402

LARGE = [name for name, w in WORKLOADS.items() if w.large and not w.opt_in]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default=",".join(LARGE), help="comma-separated names")
    parser.add_argument("--modes", default=",".join(ALL_MODES), help="comma-separated modes")
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="check a batch of this size and scale the time to the workload's "
        "batch (an estimate, for checks too long to run)",
    )
    args = parser.parse_args(argv)
    names, modes = workloads_and(parser, args.workloads, "mode", args.modes, ALL_MODES)
    print("\n".join(f"{key}: {value}" for key, value in machine.info().items()))
    started = time.perf_counter()
    for name in names:
        for mode in modes:
            if WORKLOADS[name].opt_in and mode not in WORKLOADS[name].modes:
                continue  # a full check of 100M parameters is not what the workload is for
            print(describe_fresh(fresh_check(name, mode, args.batch)), flush=True)
    print(f"({time.perf_counter() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
