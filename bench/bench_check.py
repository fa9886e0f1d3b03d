"""fastgrad against the course numpy loop, torch's numerical Jacobian and a JAX loop.

One benchmark per workload x tool (x mode for fastgrad on ``wide``), grouped
by workload. fastgrad's first call is made before ``benchmark.pedantic`` and
reported apart (``extra_info["first_call_s"]``). A baseline is warmed up (JAX
compiled, ``extra_info["compile_s"]``) and then timed in rounds, one block
of its seeded subset of parameters per round (see ``workloads.Problem.blocks``),
each block under each thread setting of ``baselines.thread_settings``; the
benchmark's statistics are per round, and ``extra_info["scaled_seconds"]`` is
the best round's time per parameter times ``N``. Every baseline's gradient
is asserted to agree with fastgrad's on the entries both computed.
"""

import time

import baselines
import pytest
import registry
from measure import (
    FASTGRAD_ROUNDS,
    ROUNDS,
    Baseline,
    Result,
    Tally,
    baseline_result,
    fastgrad_flops,
)
from workloads import EPSILON, WORKLOADS

import fastgrad as fg

SLOW_BASELINES = {"mnist", "mnist-sparse", "wide"}
"""Workloads whose baselines take seconds to minutes each: marked ``slow``."""


def _fastgrad_cases():
    for name, workload in WORKLOADS.items():
        for mode in workload.modes:
            marks = [pytest.mark.slow] if name == "wide" else []
            yield pytest.param(name, mode, id=f"{name}-{mode}", marks=marks)


def _baseline_cases():
    for name in WORKLOADS:
        for tool in ("numpy", "torch", "jax"):
            marks = [pytest.mark.slow] if name in SLOW_BASELINES else []
            yield pytest.param(name, tool, id=f"{name}-{tool}", marks=marks)


@pytest.mark.parametrize(("name", "mode"), list(_fastgrad_cases()))
def test_fastgrad(benchmark, name, mode):
    problem = registry.problem(name)
    w = problem.workload
    started = time.perf_counter()
    baselines.fastgrad_check(problem, EPSILON, mode)
    first = time.perf_counter() - started
    times = []

    def check():
        t = time.perf_counter()
        report = baselines.fastgrad_check(problem, EPSILON, mode)
        times.append(time.perf_counter() - t)
        return report

    benchmark.group = name
    rounds = ROUNDS if w.n_params > 1_000_000 and mode == "full" else FASTGRAD_ROUNDS
    report = benchmark.pedantic(check, rounds=rounds, iterations=1)
    assert report.verdict in (fg.Verdict.CORRECT, fg.Verdict.ACCEPTABLE), str(report)
    result = Result(name, mode, "fastgrad", w.n_params, w.n_params, min(times), first=first,
                    flops=fastgrad_flops(w, mode, report))
    registry.RESULTS.append(result)
    if mode == "full":
        registry.set_reference(name, report)
    benchmark.extra_info.update(N=w.n_params, mode=mode, first_call_s=first,
                                seconds=result.seconds, verdict=report.verdict.name)
    if result.flops:
        benchmark.extra_info["flop_bound_gflop"] = result.flops / 1e9


@pytest.mark.parametrize(("name", "tool"), list(_baseline_cases()))
def test_baseline(benchmark, name, tool):
    if tool != "numpy":
        pytest.importorskip(tool)
    problem = registry.problem(name)
    w = problem.workload
    reference = registry.reference(name)
    baseline = Baseline(tool, problem)
    schedule = baseline.schedule(problem.blocks(tool), ROUNDS)
    pending = iter(schedule)
    tally = Tally()

    def setup():
        block, label = next(pending)
        return (block, label, baseline.prepare(block, label)), {}

    def differences(block, label, run):
        t = time.perf_counter()
        values = run()
        tally.add(block, label, time.perf_counter() - t, values)

    benchmark.group = name
    benchmark.pedantic(differences, setup=setup, rounds=len(schedule), iterations=1)
    result = baseline_result(baseline, tally, reference)
    registry.RESULTS.append(result)
    fastgrad_full = [r.seconds for r in registry.RESULTS
                     if r.workload == name and r.tool == "fastgrad" and r.mode == "full"]
    benchmark.extra_info.update(N=w.n_params, n=result.n_done, scaled_seconds=result.seconds,
                                note=result.note, agreement=result.agreement)
    if fastgrad_full:
        benchmark.extra_info["ratio_to_fastgrad"] = result.seconds / fastgrad_full[0]
    if baseline.compile_seconds is not None:
        benchmark.extra_info["compile_s"] = baseline.compile_seconds
    baselines.assert_agree(baselines.fastgrad_values(reference, problem, tally.indices()),
                           tally.values(), problem.loss(), EPSILON, tool)
