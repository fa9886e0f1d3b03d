"""Print one table: every workload, every tool, seconds, ratios and the flop bound.

Usage::

    python bench/table.py [--quick] [--markdown] [--workloads mnist,wide] [--tools numpy,jax]

Every tool runs in this one process, one workload after the other, so the
ratios compare runs made minutes apart on the same machine. The peers run on
the workloads that list them; the 2048-wide workloads run only when named
(``bench/large.py`` runs them in fresh processes, with their peak memory).
Columns:

- ``seconds``: fastgrad's ``fg.check`` (best of rounds timed before and
  after the workload's baselines, after a first call that is reported
  apart), or a baseline's time for all ``N`` parameters (measured on a seeded
  subset and scaled where the note says so; the note also names the thread
  setting that was faster).
- ``backprops``: seconds over one plain numpy forward and backward pass of
  the same network and batch, timed in the same process (the best of its
  timings before and after the workload's checks): a figure that compares
  across machines.
- ``ratio``: the tool's seconds over fastgrad's full check of the same
  workload (a sampled or directional check of fastgrad is below 1).
- ``of bound``: the flop bound's time over fastgrad's time. The bound is
  :func:`flops.structured_flops` (the dense products a structured full check
  needs) at the float64 matrix-product rate measured in this run; above 1
  means fastgrad does less arithmetic than the bound counts (it skips zero
  inputs and dead units and follows piecewise-linear suffixes in closed form).
- ``first s``: fastgrad's first call on the workload (the first workload's
  includes loading compiled code from numba's on-disk cache), or JAX's
  compile time.
- ``agree``: the baseline's worst ``|a - b| / (1e-7 (|a| + |b|) + 8 u |J| / eps)``
  against fastgrad on the entries both computed; at most 1 means they agree.
"""

import argparse
import os
import sys
import time

from support import machine  # noqa: I001  (first: sets OMP_WAIT_POLICY before any thread starts)

machine.quiet_openmp()

from support import baselines, summary  # noqa: E402
from support.flops import matmul_rate  # noqa: E402
from support.measure import TOOLS, measure_workload  # noqa: E402
from support.workloads import WORKLOADS, workloads_and  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller subsets, fewer rounds")
    parser.add_argument("--markdown", action="store_true", help="print markdown")
    default = ",".join(name for name, w in WORKLOADS.items() if not w.large)
    parser.add_argument(
        "--workloads",
        default=default,
        help="comma-separated names (default: all but the 2048-wide ones)",
    )
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tools")
    args = parser.parse_args(argv)
    names, tools = workloads_and(parser, args.workloads, "tool", args.tools, TOOLS)
    missing = [t for t in tools if not baselines.available(t)]

    def log(message):
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    gflops = matmul_rate()
    log(f"matmul {gflops:.1f} GFLOP/s")
    results = []
    for name in names:
        results.extend(measure_workload(WORKLOADS[name], tools, args.quick, log))
        gflops = max(gflops, matmul_rate(seconds=0.3, repeats=3))
    gflops = max(gflops, matmul_rate())
    log(f"done; matmul best {gflops:.1f} GFLOP/s")

    table = summary.rows(results, gflops)
    about = machine.info(gflops)
    about["run"] = (
        f"{'quick' if args.quick else 'full'}, {time.perf_counter() - started:.0f} s, "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    if missing:
        about["skipped (not installed)"] = ", ".join(missing)
    if args.markdown:
        print("\n".join(f"- {key}: {value}" for key, value in about.items()))
        print()
        print(summary.markdown(table))
    else:
        print("\n".join(f"{key}: {value}" for key, value in about.items()))
        print()
        print(summary.text(table))
    bad = [r for r in results if r.agreement is not None and not r.agreement <= 1.0]
    for r in bad:
        print(
            f"DISAGREEMENT: {r.tool} on {r.workload}: {r.agreement:.3g} x the tolerance",
            file=sys.stderr,
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
