"""Smooth activations against ReLU: full-check time, in backprops and over ReLU's, one process.

Usage::

    python bench/smooth.py [--shapes mnist,deep] [--activations relu,tanh,sigmoid,elu,softplus]
                           [--widths 256,512] [--rounds 3]

For each shape (``mnist`` 784-128-64-10 with batch 64, ``deep`` 256x4-10
with batch 32) and each hidden activation, fastgrad's full check of the same
parameters and batch is timed (best of ``--rounds`` after a first call), with
one plain numpy forward and backward pass of the same network (a
"backprop"), in this process. Columns: seconds, backprops, and the time over
ReLU's check of the same shape. ``--widths`` adds tanh networks of four
weight layers ``h-h-h-h-10`` (batch 32) and the time per parameter, to
extrapolate to widths too slow to check here; the series of a smooth layer
costs about ``h^3`` per sample, so the extrapolation scales by width as well
as by parameters.
"""

import argparse
import sys
import time

from support import machine  # noqa: I001  (first: sets OMP_WAIT_POLICY before any thread starts)

machine.quiet_openmp()

from support.backprop import backprop_seconds  # noqa: E402
from support.workloads import DEEP, MNIST, Workload  # noqa: E402

import fastgrad as fg  # noqa: E402

SHAPES = {"mnist": (MNIST, 64), "deep": (DEEP, 32)}
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "softplus")


def check_seconds(problem, rounds):
    """Return ``(first call, best of rounds)`` of a full check, in seconds."""
    started = time.perf_counter()
    fg.check(problem.net, problem.params, problem.X, problem.Y)
    first = time.perf_counter() - started
    best = first
    for _ in range(rounds):
        started = time.perf_counter()
        fg.check(problem.net, problem.params, problem.X, problem.Y)
        best = min(best, time.perf_counter() - started)
    return first, best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated shapes")
    parser.add_argument("--activations", default=",".join(ACTIVATIONS), help="comma-separated")
    parser.add_argument("--widths", default="", help="comma-separated widths of tanh h-h-h-h-10")
    parser.add_argument("--rounds", type=int, default=3, help="timed checks after the first")
    args = parser.parse_args(argv)
    print("\n".join(f"{key}: {value}" for key, value in machine.info().items()))
    print(f"{'workload':24s} {'N':>9s} {'seconds':>9s} {'backprops':>10s} {'/ relu':>7s}")
    for shape in filter(None, args.shapes.split(",")):
        sizes, batch = SHAPES[shape]
        relu = None
        for name in filter(None, args.activations.split(",")):
            workload = Workload(f"{shape}-{name}", sizes, batch, hidden=name, peers=())
            problem = workload.build()
            _, seconds = check_seconds(problem, args.rounds)
            backprop = backprop_seconds(problem)
            relu = seconds if name == "relu" else relu
            versus = f"{seconds / relu:7.2f}" if relu else f"{'':7s}"
            print(
                f"{workload.name:24s} {workload.n_params:9d} {seconds:9.3f} "
                f"{seconds / backprop:10.0f} {versus}",
                flush=True,
            )
    for h in [int(w) for w in args.widths.split(",") if w]:
        workload = Workload(f"tanh {h}x4-10", (h, h, h, h, 10), 32, hidden="tanh", peers=())
        problem = workload.build()
        _, seconds = check_seconds(problem, max(1, args.rounds // 3))
        backprop = backprop_seconds(problem)
        print(
            f"{workload.name:24s} {workload.n_params:9d} {seconds:9.3f} "
            f"{seconds / backprop:10.0f}   ({seconds / workload.n_params * 1e9:.0f} ns/param)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
