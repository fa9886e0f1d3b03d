"""fastgrad on every workload, against the course numpy loop, torch's numerical Jacobian and JAX.

One benchmark per workload x mode for fastgrad and per workload x peer for
the baselines, grouped by workload. Timing is pytest-benchmark's own:
``benchmark.pedantic`` with one warm-up round (loading fastgrad's kernels or
warming a baseline up), then timed rounds whose statistics are the figures.

- fastgrad: rounds of ``fg.check``; ``extra_info`` holds the best round, the
  time of one numpy backprop of the same batch (measured in the same process)
  and their ratio, ``backprops``. A 2048-wide full check is timed in one
  round, after loading the kernels on a small network of the same activation.
- a baseline: one round per block of its seeded subset of parameters (see
  ``Problem.blocks``) under each thread setting of
  ``baselines.thread_settings``; ``extra_info["scaled_seconds"]`` is the best
  round's time per parameter times ``N``. Every baseline's gradient is
  asserted to agree with fastgrad's full check of the same workload, made
  apart, untimed, by the session fixture: no benchmark reads another's results.
"""

import pytest
from support import baselines
from support.measure import (
    ROUNDS,
    Baseline,
    Result,
    Tally,
    baseline_result,
    fastgrad_flops,
    fastgrad_rounds,
)
from support.session import round_times
from support.workloads import EPSILON, WORKLOADS

SLOW_BASELINES = {"mnist", "mnist-sparse", "wide"}
"""Workloads whose baselines take seconds to minutes each: marked ``slow``."""


def _fastgrad_cases():
    for name, workload in WORKLOADS.items():
        if workload.opt_in:
            continue
        for mode in workload.modes:
            marks = [pytest.mark.slow] if name == "wide" or workload.large else []
            yield pytest.param(name, mode, id=f"{name}-{mode}", marks=marks)


def _baseline_cases():
    for name, workload in WORKLOADS.items():
        for tool in workload.peers:
            marks = [pytest.mark.slow] if name in SLOW_BASELINES else []
            yield pytest.param(name, tool, id=f"{name}-{tool}", marks=marks)


@pytest.mark.parametrize(("name", "mode"), list(_fastgrad_cases()))
def test_fastgrad(benchmark, bench, name, mode):
    problem = bench.problem(name)
    w = problem.workload
    benchmark.group = name
    if w.large:
        bench.warm(w.hidden)
    report = benchmark.pedantic(
        baselines.fastgrad_check,
        args=(problem, EPSILON, mode),
        rounds=fastgrad_rounds(w),
        warmup_rounds=0 if w.large else 1,
    )
    assert report.verdict.name in baselines.PASSING, str(report)
    times = round_times(benchmark)
    if not times:
        return
    result = Result(
        name,
        mode,
        "fastgrad",
        w.n_params,
        w.n_params,
        min(times),
        flops=fastgrad_flops(w, mode, report),
        backprop=bench.backprop(name),
    )
    bench.results.append(result)
    benchmark.extra_info.update(
        N=w.n_params,
        mode=mode,
        seconds=result.seconds,
        backprop_s=result.backprop,
        backprops=result.backprops,
        verdict=report.verdict.name,
    )
    if result.flops:
        benchmark.extra_info["flop_bound_gflop"] = result.flops / 1e9


@pytest.mark.parametrize(("name", "tool"), list(_baseline_cases()))
def test_baseline(benchmark, bench, name, tool):
    if tool != "numpy":
        pytest.importorskip(tool)
    problem = bench.problem(name)
    w = problem.workload
    reference = bench.reference(name)
    baseline = Baseline(tool, problem)
    schedule = baseline.schedule(problem.blocks(tool), ROUNDS)
    pending = iter(schedule[:1] + schedule)  # the warm-up round repeats the first run
    values = {}

    def setup():
        block, label = next(pending)
        return (block, baseline.prepare(block, label)), {}

    def differences(block, run):
        values[id(block)] = (block, run())

    benchmark.group = name
    benchmark.pedantic(differences, setup=setup, rounds=len(schedule), warmup_rounds=1)
    for block, computed in values.values():
        baselines.assert_agree(
            baselines.fastgrad_values(reference, problem, block),
            computed,
            problem.loss(),
            EPSILON,
            tool,
        )
    times = round_times(benchmark)
    if not times:
        return
    tally = Tally()
    for (block, label), seconds in zip(schedule, times, strict=True):
        tally.add(block, label, seconds, values[id(block)][1])
    result = baseline_result(baseline, tally, reference, bench.backprop(name))
    bench.results.append(result)
    benchmark.extra_info.update(
        N=w.n_params,
        n=result.n_done,
        scaled_seconds=result.seconds,
        backprops=result.backprops,
        note=result.note,
        agreement=result.agreement,
    )
    if baseline.compile_seconds is not None:
        benchmark.extra_info["compile_s"] = baseline.compile_seconds
