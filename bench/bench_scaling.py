"""Growth of a full check with width, depth x width and threads; peak memory in fresh processes.

See ``scaling.py``, which prints the same figures on its own. Timing is
``benchmark.pedantic`` with one warm-up round; the figures are the best round.
"""

import pytest
from support import baselines, scaling
from support.backprop import backprop_seconds
from support.flops import structured_flops
from support.measure import Result
from support.session import round_times
from support.workloads import EPSILON, WORKLOADS

WIDTH_SECTION = "scaling with width: 784-h-h-10, batch 32, full check"
SWEEP_SECTION = "depth x width: full check, input = width, 10 softmax outputs, batch 32"
THREAD_SECTION = "thread scaling (mnist, full check)"
MEMORY_SECTION = "time and peak RSS of a fresh process checking a workload"


def _best(benchmark, problem, rounds, **options):
    report = benchmark.pedantic(
        baselines.fastgrad_check,
        args=(problem, EPSILON),
        kwargs=options,
        rounds=rounds,
        warmup_rounds=1,
    )
    times = round_times(benchmark)
    return (min(times) if times else None), report


@pytest.mark.parametrize(
    "h", [pytest.param(h, marks=[pytest.mark.slow] if h >= 1024 else []) for h in scaling.WIDTHS]
)
def test_width(benchmark, bench, h):
    w = scaling.width_workload(h)
    benchmark.group = "scaling: width"
    seconds, report = _best(benchmark, w.build(), 1 if h >= 1024 else 3)
    assert report.verdict.name in baselines.PASSING
    if seconds is None:
        return
    bound = structured_flops(w.sizes, w.batch)
    gflops = bench.gflops()
    of_bound = bound / (gflops * 1e9) / seconds
    benchmark.extra_info.update(
        N=w.n_params,
        seconds=seconds,
        us_per_param=seconds / w.n_params * 1e6,
        flop_bound_gflop=bound / 1e9,
        of_bound=of_bound,
    )
    bench.note(
        WIDTH_SECTION,
        f"h={h:>5}  N={w.n_params:>10,}  {seconds:8.3f} s  "
        f"{seconds / w.n_params * 1e6:6.3f} us/param  "
        f"bound {bound / 1e9:7.1f} GFLOP  {of_bound:5.2f} of bound "
        f"(at {gflops:.0f} GFLOP/s)",
    )


def _sweep_cases():
    for hidden in scaling.SWEEP_HIDDEN:
        for depth in scaling.SWEEP_DEPTHS:
            for width in scaling.SWEEP_WIDTHS:
                slow = width > 256 or (hidden != "relu" and width * depth > 256)
                yield pytest.param(
                    hidden,
                    depth,
                    width,
                    id=f"{hidden}-{width}x{depth}",
                    marks=[pytest.mark.slow] if slow else [],
                )


@pytest.mark.parametrize(("hidden", "depth", "width"), list(_sweep_cases()))
def test_depth_width(benchmark, bench, hidden, depth, width):
    w = scaling.sweep_workload(depth, width, hidden)
    problem = w.build()
    benchmark.group = f"scaling: depth x width, {hidden}"
    seconds, report = _best(benchmark, problem, 3)
    assert report.verdict.name in baselines.PASSING
    if seconds is None:
        return
    result = Result(
        w.name,
        "full",
        "fastgrad",
        w.n_params,
        w.n_params,
        seconds,
        backprop=backprop_seconds(problem),
    )
    benchmark.extra_info.update(
        N=w.n_params,
        seconds=seconds,
        ns_per_param=seconds / w.n_params * 1e9,
        backprop_s=result.backprop,
        backprops=result.backprops,
    )
    bench.note(
        SWEEP_SECTION,
        f"{hidden:<7} depth {depth}  width {width:>4}  "
        f"N={w.n_params:>9,}  {seconds:8.4f} s  "
        f"{seconds / w.n_params * 1e9:7.1f} ns/param  "
        f"{result.backprops:8.1f} backprops",
    )


@pytest.mark.parametrize("threads", [1, 2])
def test_threads(benchmark, bench, threads):
    benchmark.group = "scaling: threads"
    seconds, report = _best(benchmark, bench.problem("mnist"), 5, threads=threads)
    assert report.details["threads"] == threads
    benchmark.extra_info.update(threads=threads, seconds=seconds)


def test_thread_speedup(bench):
    """1 against 2 threads measured alternately, with a trivial parallel loop as control."""
    bench.note(THREAD_SECTION, scaling.describe_threads(scaling.thread_scaling("mnist", 5)))


def _memory_cases():
    yield pytest.param("course", "full", id="course-full")
    yield pytest.param("mnist", "full", id="mnist-full")
    yield pytest.param("wide", "full", id="wide-full", marks=pytest.mark.slow)
    for name, workload in WORKLOADS.items():
        if workload.large and not workload.opt_in:
            for mode in workload.modes:
                yield pytest.param(name, mode, id=f"{name}-{mode}", marks=pytest.mark.slow)


@pytest.mark.parametrize(("name", "mode"), list(_memory_cases()))
def test_fresh_process(bench, name, mode):
    out = scaling.fresh_check(name, mode)
    bench.note(MEMORY_SECTION, scaling.describe_fresh(out))
    bench.note(MEMORY_SECTION, "  " + scaling.describe_memory(out))
    assert out["verdict"] in baselines.PASSING
    assert out["peak_after_mb"] >= out["peak_warm_mb"] >= out["peak_start_mb"] > 0
