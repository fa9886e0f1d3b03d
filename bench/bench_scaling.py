"""Growth of a full check with the width of the network and the number of threads; peak memory.

See ``scaling.py``, which prints the same figures on its own.
"""

import time

import baselines
import pytest
import registry
import scaling
from flops import structured_flops
from workloads import EPSILON

WIDTH_SECTION = "scaling with width: 784-h-h-10, batch 32, full check"
THREAD_SECTION = "thread scaling (mnist, full check)"
MEMORY_SECTION = "peak RSS of a fresh process checking a workload"


def _timed(benchmark, problem, rounds, **options):
    times = []

    def check():
        t = time.perf_counter()
        report = baselines.fastgrad_check(problem, EPSILON, **options)
        times.append(time.perf_counter() - t)
        return report

    baselines.fastgrad_check(problem, EPSILON, **options)
    report = benchmark.pedantic(check, rounds=rounds, iterations=1)
    return min(times), report


@pytest.mark.parametrize("h", [pytest.param(h, marks=[pytest.mark.slow] if h >= 1024 else [])
                               for h in scaling.WIDTHS])
def test_width(benchmark, h):
    w = scaling.width_workload(h)
    benchmark.group = "scaling: width"
    seconds, report = _timed(benchmark, w.build(), 1 if h >= 1024 else 3)
    bound = structured_flops(w.sizes, w.batch)
    gflops = registry.gflops()
    of_bound = bound / (gflops * 1e9) / seconds
    benchmark.extra_info.update(N=w.n_params, seconds=seconds,
                                us_per_param=seconds / w.n_params * 1e6,
                                flop_bound_gflop=bound / 1e9, of_bound=of_bound)
    registry.note(WIDTH_SECTION, f"h={h:>5}  N={w.n_params:>10,}  {seconds:8.3f} s  "
                                 f"{seconds / w.n_params * 1e6:6.3f} us/param  "
                                 f"bound {bound / 1e9:7.1f} GFLOP  {of_bound:5.2f} of bound "
                                 f"(at {gflops:.0f} GFLOP/s)")
    assert report.verdict.name in ("CORRECT", "ACCEPTABLE")


@pytest.mark.parametrize("threads", [1, 2])
def test_threads(benchmark, threads):
    benchmark.group = "scaling: threads"
    seconds, report = _timed(benchmark, registry.problem("mnist"), 5, threads=threads)
    benchmark.extra_info.update(threads=threads, seconds=seconds)
    assert report.details["threads"] == threads


def test_thread_speedup():
    """1 against 2 threads measured alternately, with a trivial parallel loop as control."""
    registry.note(THREAD_SECTION, scaling.describe_threads(scaling.thread_scaling("mnist", 5)))


@pytest.mark.parametrize("name", ["course", "mnist", pytest.param("wide", marks=pytest.mark.slow)])
def test_peak_memory(name):
    memory = scaling.peak_memory(name)
    registry.note(MEMORY_SECTION, scaling.describe_memory(memory))
    assert memory["peak_after_mb"] >= memory["peak_before_mb"] > 0
